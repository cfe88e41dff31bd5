r"""Directional hypotheses about named parameters and effects, checked on the posterior draws
(the counterpart of brms's ``hypothesis()``).

A hypothesis is one comparison ``left OP right`` with ``OP`` one of ``<``, ``>``, ``<=``,
``>=``; each side is an arithmetic expression (``+``, ``-``, ``*``, ``/``, parentheses, unary
minus) of parameter or effect names and numbers, e.g. ``"state_effect < 0"``,
``"state_effect > reverse_state_effect"``, ``"state_effect - reverse_state_effect > 0.05"``.
It is rewritten as ``d = left - right`` and summarised per draw:

.. math::

    \Pr(d > 0 \mid \text{data}) \approx \frac{1}{S} \sum_{s=1}^{S} 1[d^{(s)} > 0]

(``<`` the same with the sign turned), with the posterior mean of ``d``, its interval and the
evidence ratio ``p / (1 - p)`` (Kruschke 2015; Buerkner 2017, brms). A point hypothesis
``a = 0`` is refused: under a continuous posterior ``Pr(a = 0) = 0`` whatever the data, so its
posterior probability says nothing; a question about "no effect" is asked of an interval
(``a > -0.05`` and ``a < 0.05``, a region of practical equivalence) or answered by the interval
in ``summary()``.

Expressions are parsed with Python's ``ast`` and only the nodes listed above are accepted; no
code is evaluated. Pure numpy.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import CI_KIND, DEFAULT_CI_PROB, interval_bounds

COLUMNS = ["estimate", "sd", "ci_low", "ci_high", "post_prob", "evidence_ratio"]
_BINARY: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
}
_COMPARE = {ast.Lt: "<", ast.LtE: "<", ast.Gt: ">", ast.GtE: ">"}
POINT_REFUSAL = (
    "a point hypothesis ({text!r}) has posterior probability 0 under a continuous posterior, "
    "whatever the data; ask about an interval instead (e.g. '{left} > -0.05' and "
    "'{left} < 0.05', a region of practical equivalence) or read the interval in summary()"
)


class HypothesisError(ValueError):
    """A hypothesis that cannot be checked: its text, the term at fault and why."""


def parse(text: str) -> tuple[ast.expr, str, ast.expr]:
    """The two sides and the direction (``"<"`` or ``">"``) of one hypothesis."""
    src = text.strip()
    # '=' alone is not Python: rewrite to '==' so that a point hypothesis gets its own message.
    probe = src.replace("<=", "\0le").replace(">=", "\0ge").replace("==", "=").replace("!=", "\0ne")
    if "=" in probe:
        left = src.split("=")[0].strip()
        raise HypothesisError(POINT_REFUSAL.format(text=src, left=left or "a"))
    try:
        node = ast.parse(src, mode="eval").body
    except SyntaxError as err:
        raise HypothesisError(
            f"cannot read the hypothesis {src!r} near column {err.offset}: write one comparison "
            "of names and numbers, e.g. 'state_effect < 0' or 'a - b > 0'"
        ) from None
    if not isinstance(node, ast.Compare) or len(node.ops) != 1:
        raise HypothesisError(
            f"the hypothesis {src!r} needs exactly one comparison (<, >, <=, >=), "
            "e.g. 'state_effect < 0'"
        )
    op = type(node.ops[0])
    if op not in _COMPARE:
        raise HypothesisError(
            f"the comparison in {src!r} must be <, >, <= or >= (a direction: the posterior "
            "probability of a one-sided hypothesis)"
        )
    return node.left, _COMPARE[op], node.comparators[0]


def check_terms(node: ast.expr, text: str) -> None:
    """Raise, naming the term, at the first node other than names, numbers, + - * / and unary
    signs."""
    if isinstance(node, ast.Name) or (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        check_terms(node.operand, text)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        check_terms(node.left, text)
        check_terms(node.right, text)
        return
    raise HypothesisError(
        f"the term {ast.unparse(node)!r} in {text.strip()!r} is not supported: use names, "
        "numbers, +, -, *, / and parentheses"
    )


def names_in(node: ast.expr) -> list[str]:
    """The names an expression reads, in order of first appearance."""
    out: list[str] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id not in out:
            out.append(n.id)
    return out


def evaluate(node: ast.expr, draws: Mapping[str, np.ndarray], text: str) -> np.ndarray:
    """An expression's value per draw (its terms checked by :func:`check_terms`)."""
    check_terms(node, text)
    if isinstance(node, ast.Constant):
        return np.asarray(float(node.value))  # type: ignore[arg-type]  # a number: check_terms
    if isinstance(node, ast.Name):
        return np.asarray(draws[node.id], dtype=float)
    if isinstance(node, ast.UnaryOp):
        value = evaluate(node.operand, draws, text)
        return -value if isinstance(node.op, ast.USub) else value
    assert isinstance(node, ast.BinOp)
    return _BINARY[type(node.op)](
        evaluate(node.left, draws, text), evaluate(node.right, draws, text)
    )


def hypothesis(
    hypotheses: str | Iterable[str],
    draws: Mapping[str, np.ndarray] | Callable[[list[str]], Mapping[str, np.ndarray]],
    known: Iterable[str],
    ci_prob: float = DEFAULT_CI_PROB,
) -> pd.DataFrame:
    """Posterior probability, estimate and interval of each hypothesis.

    Parameters
    ----------
    hypotheses
        One hypothesis or several (see the module docstring for the grammar).
    draws
        The draws of the names (each ``(chain, draw)``), or a function from the names a
        hypothesis uses to their draws (so that derived effects are computed only when asked).
    known
        Every name a hypothesis may use (for the message naming an unknown one).
    ci_prob
        Level of the highest-density interval of ``left - right``.

    Returns
    -------
    pandas.DataFrame
        One row per hypothesis (indexed by its text, as written): ``estimate`` (posterior mean
        of ``left - right``), ``sd``, ``ci_low``, ``ci_high``, ``post_prob`` (the posterior
        probability that the hypothesis holds) and ``evidence_ratio`` (``p / (1 - p)``; inf
        when every draw agrees).
    """
    texts = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if not texts:
        raise HypothesisError("no hypothesis given")
    known = list(known)
    rows = []
    for text in texts:
        left, op, right = parse(text)
        check_terms(left, text)
        check_terms(right, text)
        used = names_in(left) + [n for n in names_in(right) if n not in names_in(left)]
        unknown = [n for n in used if n not in known]
        if unknown:
            raise HypothesisError(
                f"unknown term {unknown[0]!r} in {text.strip()!r}.{vocab.suggest(unknown[0], known)}"
                f" Valid names: {', '.join(known)}."
            )
        values = draws(used) if callable(draws) else draws
        diff = evaluate(left, values, text) - evaluate(right, values, text)
        if diff.ndim == 0:
            raise HypothesisError(f"the hypothesis {text.strip()!r} names no parameter or effect")
        flat = diff.reshape(-1)
        if not np.all(np.isfinite(flat)):
            raise HypothesisError(
                f"{text.strip()!r} is not finite in every draw (a division by 0?)"
            )
        prob = float(np.mean(flat > 0) if op == ">" else np.mean(flat < 0))
        lo, hi = interval_bounds(flat, ci_prob, CI_KIND)
        ratio = np.inf if prob == 1.0 else prob / (1.0 - prob)
        rows.append([flat.mean(), flat.std(ddof=1), float(lo), float(hi), prob, ratio])
    out = pd.DataFrame(rows, index=pd.Index(texts, name="hypothesis"), columns=COLUMNS)
    return out


__all__ = [
    "COLUMNS",
    "HypothesisError",
    "check_terms",
    "evaluate",
    "hypothesis",
    "names_in",
    "parse",
]
