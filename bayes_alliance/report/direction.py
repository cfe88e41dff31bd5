"""Which way is better for each variable: the colours of the state bars follow it.

A session above a patient's own level is good news for the alliance and bad news for
symptoms (OQ-45, BDI: higher scores are worse). The default reads the roles: the predictor
(the alliance) is better when higher, the outcome (symptoms) when lower. A user whose scales
run the other way (an outcome of well-being, a predictor of rupture markers) states it by
column: ``{"wellbeing": "higher"}`` (``report --better wellbeing=higher``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

DIRECTIONS = ("higher", "lower")


def parse_better(items: Sequence[str]) -> dict[str, str]:
    """``["COLUMN=higher", ...]`` (the command line's ``--better``) as a mapping; a malformed
    item is named in the error."""
    out: dict[str, str] = {}
    for item in items:
        column, sep, way = item.partition("=")
        if not sep or not column.strip() or way.strip() not in DIRECTIONS:
            raise ValueError(
                f"--better {item!r}: write COLUMN=higher or COLUMN=lower (which scores are "
                "better), e.g. --better symptoms=lower"
            )
        out[column.strip()] = way.strip()
    return out


def higher_is_better(
    predictor: str, outcome: str, better: Mapping[str, str] | None = None
) -> tuple[bool, bool]:
    """Whether a higher score is better, for the predictor and the outcome.

    Parameters
    ----------
    predictor, outcome
        The two variables' columns.
    better
        ``{column: "higher" | "lower"}`` for the columns whose direction is stated; the others
        keep the default (predictor higher, outcome lower).

    Raises
    ------
    ValueError
        A column that is neither variable, or a direction other than "higher" / "lower".
    """
    stated = dict(better or {})
    unknown = sorted(set(stated) - {predictor, outcome})
    if unknown:
        raise ValueError(
            f"direction stated for {', '.join(unknown)}, which is not a variable of this fit "
            f"(the variables are {predictor} and {outcome})"
        )
    for column, way in stated.items():
        if way not in DIRECTIONS:
            raise ValueError(f"direction of {column}: {way!r}; write 'higher' or 'lower'")
    return (
        stated.get(predictor, "higher") == "higher",
        stated.get(outcome, "lower") == "higher",
    )


def direction_words(column: str, higher_better: bool) -> str:
    """``"higher symptoms is worse"`` and the like, for captions."""
    return f"higher {column} is {'better' if higher_better else 'worse'}"


__all__ = ["DIRECTIONS", "direction_words", "higher_is_better", "parse_better"]
