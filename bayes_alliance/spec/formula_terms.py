"""What the terms of a model string mean: parsed statements -> column roles and model options.

The parser (:mod:`bayes_alliance.spec.formula`) collects the statements in :class:`Terms`;
:func:`interpret` reads them by the rules of docs/formulas.md and checks the values with the
option table, so a model string and the flags give one :class:`ModelSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bayes_alliance.core import vocab
from bayes_alliance.spec.options import MODEL, ROLES

# Options a term expresses (a ``name = value`` statement may repeat them, but not contradict).
TERM_KEYS = (
    "therapist_level",
    "equations",
    "dynamics",
    "same_session",
    "reverse_lag",
    "random_slopes",
    "moderators",
    "baseline",
    "trend",
    "random_innovations",
    "predictor_indicators",
    "outcome_indicators",
)
ROLE_KEYS = ROLES.names
SETTING_KEYS = ROLE_KEYS + MODEL.names


@dataclass(frozen=True)
class Token:
    """A token (or, kind ``span``, a stretch of text) and where it starts in the model string."""

    kind: str
    value: str
    pos: int
    length: int = 1


class FormulaError(ValueError):
    """A bad model string: the message names the term, shows it with a caret under the text
    and says what was expected."""

    def __init__(self, message: str, text: str, pos: int, length: int = 1) -> None:
        self.message, self.text, self.pos = message, text, pos
        line_start = text.rfind("\n", 0, pos) + 1
        line_end = text.find("\n", pos)
        line = text[line_start : len(text) if line_end < 0 else line_end]
        row = text.count("\n", 0, pos) + 1
        where = f"line {row}, column {pos - line_start + 1}"
        caret = " " * (pos - line_start) + "^" * max(1, min(length, len(line) - pos + line_start))
        super().__init__(f"model string, {where}: {message}\n    {line}\n    {caret}")


Term = tuple[str, Any, Token]
Group = tuple[list[tuple[str, Token]], list[Token], str]


@dataclass
class Terms:
    """The statements of a model string as parsed, in order."""

    equations: list[tuple[Token, list[Term]]] = field(default_factory=list)
    sigma: list[tuple[Group, Token]] = field(default_factory=list)
    indicators: list[tuple[Token, list[Token]]] = field(default_factory=list)
    settings: list[tuple[Token, tuple[Any, Token]]] = field(default_factory=list)


class _Reader:
    """The state of one interpretation: values set so far and the text that set each."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.roles: dict[str, Any] = {}
        self.model: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.covariates: list[str] = []

    def fail(self, message: str, tok: Token) -> FormulaError:
        return FormulaError(message, self.text, tok.pos, tok.length)

    def set(self, table: dict[str, Any], key: str, value: Any, tok: Token) -> None:
        if key in table and table[key] != value:
            raise self.fail(
                f"{tok.value!r} sets {key} to {value!r}, but {self.sources[key]!r} "
                f"set it to {table[key]!r}",
                tok,
            )
        table[key] = value
        self.sources.setdefault(key, tok.value)

    def covariate(self, name: str) -> None:
        if name not in self.covariates:
            self.covariates.append(name)


def interpret(
    terms: Terms, text: str, given: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Roles, model options and their sources from parsed statements (see the module doc).
    ``given``: column roles given beside the string (keywords, flags, ``[data]`` keys), which
    tell crossed levels apart as a ``patient = column`` statement does."""
    r = _Reader(text)
    settings = _settings(terms, r)
    if len(terms.equations) > 2:
        raise r.fail(
            "expected at most two regressions (the outcome's, then the predictor's)",
            terms.equations[2][0],
        )
    y_tok, y_terms = terms.equations[0]
    x_eq = terms.equations[1] if len(terms.equations) > 1 else None
    y = y_tok.value
    x = _predictor(y, y_terms, x_eq, settings, r)
    r.set(r.roles, "outcome", y, y_tok)
    r.set(r.roles, "predictor", x, x_eq[0] if x_eq else Token("span", f"lag({x})", y_tok.pos))
    if x == y:
        raise r.fail(f"the predictor and the outcome are both {y!r}", y_tok)
    groups: list[tuple[Group, Token]] = []
    seen: set[tuple[str, str]] = set()
    lags = {"y": _equation(y_terms, x, y, "outcome", r, groups, seen)}
    if x_eq is not None:
        lags["x"] = _equation(x_eq[1], x, y, "predictor", r, groups, seen)
    _dynamics(lags, y_tok, x_eq, x, y, r)
    stated: dict[str, Any] = {k: settings[k][0] for k in ("patient", "therapist") if k in settings}
    for key in ("patient", "therapist"):
        if key not in stated and given and isinstance(given.get(key), str):
            stated[key] = given[key]
    _levels(groups, y_tok, r, stated)
    _sigma(terms, r)
    for lhs, names in terms.indicators:
        which = {x: "predictor", y: "outcome"}.get(lhs.value)
        if which is None:
            raise r.fail(
                f"'{lhs.value} =~ ...' names indicators of a column that is neither the "
                f"outcome ({y!r}) nor the predictor ({x!r})",
                lhs,
            )
        r.set(r.model, f"{which}_indicators", [n.value for n in names], lhs)
    if r.covariates:
        r.roles["covariates"] = list(r.covariates)
    _absent(r, x, y)
    for key, (value, tok) in settings.items():
        table = r.roles if key in ROLE_KEYS else r.model
        r.set(table, key, value, Token("span", f"{key} = {tok.value}", tok.pos, tok.length))
    _check(r, settings)
    return r.roles, r.model, r.sources


def _settings(terms: Terms, r: _Reader) -> dict[str, tuple[Any, Token]]:
    out: dict[str, tuple[Any, Token]] = {}
    for name, (value, tok) in terms.settings:
        if name.value not in SETTING_KEYS:
            raise r.fail(
                f"unknown option or column role {name.value!r}."
                f"{vocab.suggest(name.value, SETTING_KEYS)}",
                name,
            )
        if name.value in out:
            raise r.fail(f"{name.value!r} is set twice", name)
        out[name.value] = (value, tok)
    return out


def _predictor(
    y: str,
    y_terms: list[Term],
    x_eq: tuple[Token, list[Term]] | None,
    settings: dict[str, tuple[Any, Token]],
    r: _Reader,
) -> str:
    """The predictor: the second regression's outcome, else the column lagged in the outcome's
    regression other than the outcome, else the ``predictor = ...`` setting."""
    if x_eq is not None:
        return x_eq[0].value
    lagged = [(t, term) for kind, t, term in _flat(y_terms) if kind == "lag" and t.value != y]
    names = list(dict.fromkeys(t.value for t, _ in lagged))
    if len(names) > 1:
        raise r.fail(
            f"lag() of two columns other than the outcome ({names[0]!r}, {names[1]!r}): "
            "expected one predictor",
            next(term for t, term in lagged if t.value == names[1]),
        )
    if names:
        return names[0]
    if "predictor" in settings and isinstance(settings["predictor"][0], str):
        return str(settings["predictor"][0])
    raise r.fail(
        "no predictor: expected lag(predictor) in this regression, the predictor's own "
        "regression, or 'predictor = column'",
        Token("span", y, 0, len(r.text.split("\n")[0])),
    )


def _flat(ts: list[Term]) -> list[tuple[str, Token, Token]]:
    """The calls of a regression (inside interactions and group terms too): (kind, arg, token)."""
    out = []
    for kind, payload, tok in ts:
        if kind in ("lag", "trend", "baseline"):
            out.append((kind, payload, tok))
        elif kind == "interaction":
            out.append((payload[0][0], payload[0][1], tok))
        elif kind == "group":
            out += [(k, arg, tok) for k, arg in payload[0] if k == "lag"]
    return out


def _equation(
    ts: list[Term],
    x: str,
    y: str,
    which: str,
    r: _Reader,
    groups: list[tuple[Group, Token]],
    seen: set[tuple[str, str]],
) -> dict[str, Token]:
    """One regression's terms; returns its lag terms by the lagged column (``x``/``y``)."""
    lags: dict[str, Token] = {}
    own, other = (y, x) if which == "outcome" else (x, y)
    for kind, payload, tok in ts:
        key = (which, tok.value.replace(" ", ""))
        if key in seen and kind != "one":
            raise r.fail(f"the term {tok.value!r} appears twice in the {which}'s regression", tok)
        seen.add(key)
        if kind == "group":
            groups.append((payload, tok))
        elif kind == "column":
            if payload.value == own:
                raise r.fail(
                    f"{payload.value!r} on itself in the same session: expected "
                    f"lag({payload.value}) for its autoregression",
                    tok,
                )
            if payload.value == other:
                ss = "predictor_to_outcome" if which == "outcome" else "outcome_to_predictor"
                r.set(r.model, "same_session", ss, tok)
            else:
                r.covariate(payload.value)
        elif kind == "lag":
            if payload.value not in (x, y):
                raise r.fail(
                    f"lag({payload.value}): expected lag of the outcome ({y!r}) or the "
                    f"predictor ({x!r})",
                    tok,
                )
            lags["x" if payload.value == x else "y"] = tok
        elif kind == "trend":
            r.set(r.model, "trend", True, tok)
            r.set(r.roles, "session", payload.value, tok)
        elif kind == "baseline":
            r.model.setdefault("baseline", []).append(payload.value)
            r.sources.setdefault("baseline", tok.value)
            r.covariate(payload.value)
        elif kind == "interaction":
            (fn, arg), mod = payload
            if fn != "lag" or arg.value != x or which != "outcome":
                raise r.fail(
                    f"{tok.value!r}: expected lag({x}):column in the outcome's regression "
                    "(a moderator of the lagged state effect)",
                    tok,
                )
            r.model.setdefault("moderators", []).append(mod.value)
            r.sources.setdefault("moderators", tok.value)
            r.covariate(mod.value)
    return lags


def _dynamics(
    lags: dict[str, dict[str, Token]],
    y_tok: Token,
    x_eq: tuple[Token, list[Term]] | None,
    x: str,
    y: str,
    r: _Reader,
) -> None:
    any_lag = any(lags[k] for k in lags)
    equations = "bivariate" if x_eq is not None else "outcome"
    r.set(r.model, "equations", equations, x_eq[0] if x_eq else y_tok)
    r.set(r.model, "dynamics", "var1" if any_lag else "none", y_tok)
    if not any_lag:
        return
    for name, col in (("x", x), ("y", y)):
        if name not in lags["y"]:
            raise r.fail(
                f"the VAR(1) regression of {y!r} needs lag({col}): expected "
                f"'{y} ~ lag({x}) + lag({y}) + ...' (no lag() anywhere: no lagged dynamics)",
                y_tok,
            )
    if x_eq is not None:
        if "x" not in lags["x"]:
            raise r.fail(f"the predictor's regression needs its autoregression lag({x})", x_eq[0])
        r.set(r.model, "reverse_lag", "y" in lags["x"], x_eq[0])


def _levels(
    groups: list[tuple[Group, Token]], y_tok: Token, r: _Reader, stated: Mapping[str, Any]
) -> None:
    """Patients and therapists from the group terms: ``(1 | therapist/patient)`` nested (also
    ``(1 | therapist) + (1 | therapist:patient)``), ``(1 | therapist) + (1 | patient)`` crossed
    in either order, with the patient column ``stated`` elsewhere (see :func:`_crossed`),
    ``(1 | patient)`` two levels; ``lag(predictor)`` before ``|`` makes the state effect vary
    at that level."""
    varying: dict[str, tuple[bool, Token]] = {}  # level column -> (state effect varies, term)
    nested: tuple[str, str] | None = None
    order: list[str] = []
    for (inside, levels, how), tok in groups:
        slope = False
        for kind, arg in inside:
            if kind == "lag" and arg.value == r.roles["predictor"]:
                slope = True
            elif kind == "lag":
                raise r.fail(
                    f"lag({arg.value}) varying between levels: only the state effect "
                    f"lag({r.roles['predictor']}) is written in a group term; other random lags "
                    "fit the k-series model: write 'random_lags = [outcome_autoregression]' "
                    "(names as --random-lags)",
                    tok,
                )
        names = [t.value for t in levels]
        if how:
            pair = (names[0], names[1])
            if nested is not None and nested != pair:
                raise r.fail(f"{tok.value!r} nests other levels than {nested[0]}/{nested[1]}", tok)
            nested = pair
        mine = names if how == "/" else names[-1:]
        for name in mine:
            if name in varying:
                raise r.fail(f"the level {name!r} appears in two group terms", tok)
            varying[name] = (slope, tok)
            order.append(name)
    if not varying:
        if "patient" in r.roles:
            return
        raise r.fail(
            "no patient level: expected a group term such as (1 | patient) or "
            "(1 | therapist/patient) in the outcome's regression",
            y_tok,
        )
    if nested is not None:
        therapist, patient = nested
        extra = [n for n in order if n not in nested]
        if extra:
            raise r.fail(
                f"the level {extra[0]!r} is neither {therapist!r} nor {patient!r}",
                varying[extra[0]][1],
            )
        crossed = False
    elif len(order) == 1:
        therapist, patient, crossed = None, order[0], False
    elif len(order) == 2:
        (therapist, patient), crossed = _crossed(order, stated, varying, r), True
    else:
        raise r.fail("expected at most two levels (therapists and patients)", varying[order[2]][1])
    first = next(iter(varying.values()))[1]
    for level in (patient, therapist):
        if level is not None and level not in varying:
            raise r.fail(f"the level {level!r} needs its own group term, e.g. (1 | {level})", first)
    r.set(r.roles, "patient", patient, varying[patient][1])
    # two levels: None, so that a therapist column given beside the string contradicts it
    r.set(r.roles, "therapist", therapist, varying[therapist or patient][1])
    if crossed:
        r.set(r.roles, "crossed", True, varying[patient][1])
    r.set(r.model, "therapist_level", therapist is not None, first)
    slopes = [
        lvl
        for lvl, col in (("patient", patient), ("therapist", therapist))
        if col is not None and varying[col][0]
    ]
    r.set(r.model, "random_slopes", slopes, first)


def _crossed(
    order: list[str],
    stated: Mapping[str, Any],
    varying: Mapping[str, tuple[bool, Token]],
    r: _Reader,
) -> tuple[str, str]:
    """(therapist, patient) of two crossed group terms. Two separate terms say nothing about
    which level holds the patients, so that comes from a ``patient =`` or ``therapist =``
    statement or the roles given beside the string, never from the order of the terms."""
    a, b = order
    for key in ("patient", "therapist"):
        col = stated.get(key)
        if col is None:
            continue
        if col not in order:
            raise r.fail(
                f"{key} = {col} is not one of the crossed levels {a!r} and {b!r}", varying[b][1]
            )
        other = b if col == a else a
        return (other, col) if key == "patient" else (col, other)
    raise r.fail(
        f"crossed levels {a!r} and {b!r}: two separate group terms do not say which holds the "
        f"patients. Name it: add 'patient = {b}' (or 'therapist = {a}') to the model string, "
        "or give the patient column beside it (patient=, --patient, [data] patient); if "
        f"patients are nested in therapists, write (1 | {a}/{b})",
        varying[b][1],
    )


def _sigma(terms: Terms, r: _Reader) -> None:
    if len(terms.sigma) > 1:
        raise r.fail("'sigma ~ ...' is given twice", terms.sigma[1][1])
    for (inside, levels, how), tok in terms.sigma:
        if any(kind != "one" for kind, _ in inside) or how == ":":
            raise r.fail(
                "expected 'sigma ~ (1 | patient)' or 'sigma ~ (1 | therapist/patient)' "
                "(the innovation SDs vary between patients, and therapists)",
                tok,
            )
        names = [t.value for t in levels]
        where = {r.roles.get("patient"): "patient", r.roles.get("therapist"): "therapist"}
        bad = [n for n in names if n not in where]
        if bad:
            raise r.fail(f"{tok.value!r}: {bad[0]!r} is not a level of the regression", tok)
        r.set(r.model, "random_innovations", [where[n] for n in reversed(names)], tok)


def _absent(r: _Reader, x: str, y: str) -> None:
    """The options of terms the string does not have, at their defaults: the string states
    them, so that a flag or key beside it that sets one is a contradiction, not an addition."""
    absent = {
        "same_session": ("none", f"{x} or {y} in the other's regression"),
        "moderators": ([], f"lag({x}):column"),
        "baseline": ([], "baseline(column)"),
        "trend": (False, "trend(session)"),
        "random_innovations": ([], "sigma ~ (1 | patient)"),
        "predictor_indicators": ([], f"{x} =~ ..."),
        "outcome_indicators": ([], f"{y} =~ ..."),
    }
    for key, (value, term) in absent.items():
        if key not in r.model:
            r.model[key] = value
            r.sources[key] = f"no {term} term"


def _check(r: _Reader, settings: dict[str, tuple[Any, Token]]) -> None:
    """Types and choices by the option table; a bad value is shown at its statement."""
    for table, group in ((r.model, MODEL), (r.roles, ROLES)):
        for key, value in list(table.items()):
            if value is None:
                continue
            try:
                table[key] = group.check({key: value}, where="model string")[key]
            except ValueError as exc:
                tok = settings[key][1] if key in settings else Token("span", "", 0)
                raise r.fail(str(exc), tok) from None
