"""The model string: a brms/lavaan-like text for the options the flags and spec files set.

A model string is one or more statements, separated by new lines or ``;`` (``#`` starts a
comment)::

    symptoms ~ lag(alliance) + lag(symptoms) + (lag(alliance) | therapist/patient)
    alliance ~ lag(alliance) + lag(symptoms)
    session = session

The grammar (docs/formulas.md lists every term and its option)::

    model     := statement ((";" | NEWLINE) statement)*
    statement := NAME "~" rhs                regression: the outcome's first, then the predictor's
               | "sigma" "~" group           patients' (and therapists') own innovation SDs
               | NAME "=~" NAME ("+" NAME)*  several indicators of a variable per session
               | NAME "=" value              a column role or a model option by name
    rhs       := term ("+" term)*
    term      := "1" | NAME | call (":" NAME)? | NAME ":" call | "(" group ")"
    call      := ("lag" | "trend" | "baseline") "(" NAME ")"
    group     := gterm ("+" gterm)* "|" NAME (("/" | ":") NAME)?
    gterm     := "1" | "lag" "(" NAME ")"
    value     := NAME | NUMBER | "true" | "false" | "[" (NAME ("," NAME)*)? "]"

:func:`parse_formula` tokenizes and parses the text by recursive descent into column roles and
model options (:class:`ParsedFormula`), which become the same
:class:`~bayes_alliance.data.roles.Roles` and :class:`~bayes_alliance.spec.model_spec.ModelSpec` as
the flags through the option table (:mod:`bayes_alliance.spec.options`).
:func:`bayes_alliance.spec.formula_text.to_formula` writes any spec back as a model string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bayes_alliance.data.validate import did_you_mean
from bayes_alliance.spec.formula_terms import (
    ROLE_KEYS,
    TERM_KEYS,
    FormulaError,
    Terms,
    Token,
    interpret,
)

__all__ = ["FormulaError", "ParsedFormula", "looks_like_formula", "parse_formula", "tokenize"]

_TOKEN = re.compile(
    r"""(?P<space>[ \t\r]+)|(?P<comment>\#[^\n]*)|(?P<newline>\n)
    |(?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    |(?P<name>[A-Za-z_.][A-Za-z0-9_.]*|`[^`\n]+`)
    |(?P<op>=~|~|\+|\(|\)|\||/|:|=|;|,|\[|\])""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class ParsedFormula:
    """What a model string sets: column roles and model options (as the option table's
    spec-file values), and for each key the statement or term that set it (for messages)."""

    text: str
    roles: dict[str, Any]
    model: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)


def looks_like_formula(text: object) -> bool:
    """Whether ``text`` is a model string rather than a path (it has a ``~``)."""
    return isinstance(text, str) and "~" in text


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text``; new lines inside parentheses or brackets, or after an operator that
    needs a right-hand side, continue the statement."""
    out: list[Token] = []
    depth = 0
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FormulaError(
                f"unexpected character {text[pos]!r}: expected a name, a number or one of "
                "~ =~ + ( ) | / : = ; , [ ]",
                text,
                pos,
            )
        kind = m.lastgroup or ""
        value = m.group()
        if kind == "op" and value in "([":
            depth += 1
        elif kind == "op" and value in ")]":
            depth = max(depth - 1, 0)
        if kind == "newline" and depth == 0:
            if not (out and out[-1].kind == "op" and out[-1].value in ("+", "~", "=~", "=", ":")):
                out.append(Token("sep", ";", pos))
        elif kind == "name" and value.startswith("`"):
            out.append(Token("name", value[1:-1], pos, len(value)))
        elif kind in ("name", "number"):
            out.append(Token(kind, value, pos, len(value)))
        elif kind == "op":
            out.append(Token("sep" if value == ";" else "op", value, pos, len(value)))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


class _Parser:
    """Recursive descent over the tokens; each method consumes one grammar rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, tok: Token | None = None) -> FormulaError:
        t = tok or self.tok
        if tok is not None:  # the message names the token already
            return FormulaError(message, self.text, t.pos, t.length)
        found = "the end of the model string" if t.kind == "end" else repr(t.value)
        return FormulaError(f"{message}, found {found}", self.text, t.pos, t.length)

    def take(self, value: str | None = None, kind: str = "op", expected: str = "") -> Token:
        t = self.tok
        if t.kind != kind or (value is not None and t.value != value):
            raise self.error(f"expected {expected or repr(value)}")
        self.i += 1
        return t

    def at(self, value: str, kind: str = "op") -> bool:
        return self.tok.kind == kind and self.tok.value == value

    def model(self, terms: Terms) -> None:
        while self.tok.kind == "sep":
            self.i += 1
        while self.tok.kind != "end":
            self.statement(terms)
            if self.tok.kind not in ("sep", "end"):
                raise self.error("expected '+', a new line or ';' after a term")
            while self.tok.kind == "sep":
                self.i += 1
        if not terms.equations:
            raise FormulaError(
                "the model string has no regression: expected e.g. "
                "'symptoms ~ lag(alliance) + lag(symptoms) + (1 | therapist/patient)'",
                self.text,
                0,
                len(self.text.strip()) or 1,
            )

    def statement(self, terms: Terms) -> None:
        lhs = self.take(kind="name", expected="a column name starting a statement")
        if self.at("~") and lhs.value == "sigma":
            self.i += 1
            start = self.tok
            self.take("(")
            terms.sigma.append((self.group(), self.span(start)))
        elif self.at("~"):
            self.i += 1
            terms.equations.append((lhs, self.rhs()))
        elif self.at("=~"):
            self.i += 1
            names = [self.take(kind="name", expected="an indicator column")]
            while self.at("+"):
                self.i += 1
                names.append(self.take(kind="name", expected="an indicator column"))
            terms.indicators.append((lhs, names))
        elif self.at("="):
            self.i += 1
            terms.settings.append((lhs, self.value()))
        else:
            raise self.error(f"expected '~', '=~' or '=' after {lhs.value!r}")

    def span(self, start: Token) -> Token:
        """One token covering ``start`` to the last token taken (for messages)."""
        last = self.tokens[self.i - 1]
        end = last.pos + last.length
        return Token("span", self.text[start.pos : end], start.pos, end - start.pos)

    def rhs(self) -> list[tuple[str, Any, Token]]:
        out = [self.term()]
        while self.at("+"):
            self.i += 1
            out.append(self.term())
        return out

    def term(self) -> tuple[str, Any, Token]:
        start = self.tok
        if self.tok.kind == "number":
            num = self.take(kind="number")
            if num.value != "1":
                raise self.error("expected 1 (the intercept) or a term", num)
            return ("one", None, num)
        if self.at("("):
            self.i += 1
            return ("group", self.group(), self.span(start))
        name = self.take(kind="name", expected="a term (a column, lag(...), or (... | ...))")
        if self.at("("):
            call = self.call(name)
            if self.at(":"):
                self.i += 1
                other = self.take(kind="name", expected="a moderator column after ':'")
                return ("interaction", (call, other), self.span(start))
            return (call[0], call[1], self.span(start))
        if self.at(":"):
            self.i += 1
            other_name = self.take(kind="name", expected="lag(...) after ':'")
            call = self.call(other_name)
            return ("interaction", (call, name), self.span(start))
        return ("column", name, name)

    def call(self, name: Token) -> tuple[str, Token]:
        if name.value not in ("lag", "trend", "baseline"):
            raise self.error(
                f"unknown function {name.value!r}: expected lag(...), trend(...) or baseline(...)",
                name,
            )
        self.take("(")
        arg = self.take(kind="name", expected=f"a column name inside {name.value}(...)")
        if self.at(","):
            raise self.error(f"{name.value}(...) takes one column")
        self.take(")", expected="')'")
        return (name.value, arg)

    def group(self) -> tuple[list[tuple[str, Token]], list[Token], str]:
        """Inside ``( ... | ... )``, after the opening parenthesis."""
        inside: list[tuple[str, Token]] = [self.gterm()]
        while self.at("+"):
            self.i += 1
            inside.append(self.gterm())
        self.take("|", expected="'|' between the varying terms and the level")
        levels = [self.take(kind="name", expected="a level (patient, or therapist/patient)")]
        how = ""
        if self.at("/") or self.at(":"):
            how = self.tok.value
            self.i += 1
            levels.append(self.take(kind="name", expected=f"a level after {how!r}"))
        if self.at("/") or self.at(":"):
            raise self.error("expected at most two levels (therapist/patient)")
        self.take(")", expected="')' closing the group term")
        return inside, levels, how

    def gterm(self) -> tuple[str, Token]:
        if self.tok.kind == "number":
            num = self.take(kind="number")
            if num.value != "1":
                raise self.error("expected 1 or lag(...) before '|'", num)
            return ("one", num)
        name = self.take(kind="name", expected="1 or lag(...) before '|'")
        if name.value != "lag" or not self.at("("):
            raise self.error(
                "expected 1 or lag(...) before '|' (latent means and the lagged state effect "
                "vary between patients or therapists)",
                name,
            )
        _, arg = self.call(name)
        return ("lag", arg)

    def value(self) -> tuple[Any, Token]:
        t = self.tok
        if self.at("["):
            self.i += 1
            items: list[str] = []
            while not self.at("]"):
                items.append(self.take(kind="name", expected="a name in the list").value)
                if not self.at("]"):
                    self.take(",", expected="',' or ']'")
            self.take("]")
            return items, self.span(t)
        if t.kind == "number":
            self.i += 1
            return (float(t.value) if any(c in t.value for c in ".eE") else int(t.value)), t
        if t.kind == "name":
            self.i += 1
            lowered = t.value.lower()
            return ({"true": True, "false": False}.get(lowered, t.value)), t
        raise self.error("expected a value (a name, a number, true, false or [a, b])")


def parse_formula(
    text: str, roles: Mapping[str, Any] | None = None, columns: Sequence[str] | None = None
) -> ParsedFormula:
    """Parse a model string into column roles and model options.

    Parameters
    ----------
    text
        The model string (see the module's grammar and docs/formulas.md).
    roles
        Column roles given beside the string (keywords, flags, ``[data]`` keys; None: not
        given). Only ``patient`` and ``therapist`` are read here: they tell two crossed group
        terms apart (:func:`~bayes_alliance.spec.formula_terms.interpret`); a contradiction
        with the string is found later, by
        :func:`~bayes_alliance.spec.formula_text.combine`.
    columns
        The data's column names (None: not known). Every column the string names (outcome,
        predictor, terms, calls, moderators, levels, indicators, ``role = column``) is checked
        against them first, so that a misspelt column is reported as such, with the closest
        name, rather than as a puzzling model.

    Returns
    -------
    ParsedFormula
        ``roles`` (the option table's ``[data]`` values: outcome, predictor, patient,
        therapist, covariates, crossed, and any role given as ``name = column``) and
        ``model`` (every option a term expresses, at its value, plus the options given as
        ``name = value``), checked by the option table.

    Raises
    ------
    FormulaError
        A ``ValueError`` whose message names the offending term and shows its position with a
        caret under the model string, and says what was expected.
    """
    if not isinstance(text, str):
        raise TypeError(f"a model string must be a str, got {type(text).__name__}")
    terms = Terms()
    _Parser(text).model(terms)
    if columns is not None:
        _check_columns(terms, text, [str(c) for c in columns])
    roles, model, sources = interpret(terms, text, roles)
    return ParsedFormula(text=text, roles=roles, model=model, sources=sources)


def _named_columns(terms: Terms) -> list[Token]:
    """The tokens of a parsed string that name data columns, in order."""
    out: list[Token] = []

    def levels(group: tuple[list[tuple[str, Token]], list[Token], str]) -> None:
        inside, names, _ = group
        out.extend(arg for kind, arg in inside if kind == "lag")
        out.extend(names)

    for lhs, ts in terms.equations:
        out.append(lhs)
        for kind, payload, _ in ts:
            if kind == "column" or kind in ("lag", "trend", "baseline"):
                out.append(payload)
            elif kind == "interaction":
                (_, arg), mod = payload
                out += [arg, mod]
            elif kind == "group":
                levels(payload)
    for group, _ in terms.sigma:
        levels(group)
    for _, names in terms.indicators:
        out += names
    for name, (value, tok) in terms.settings:
        if name.value in ROLE_KEYS and isinstance(value, str):
            out.append(tok)
    return out


def _check_columns(terms: Terms, text: str, columns: list[str]) -> None:
    """A :class:`FormulaError` at the first named column that the data lack."""
    # a variable measured by indicators (``alliance =~ wai1 + wai2``) is no column itself
    known = set(columns) | {lhs.value for lhs, _ in terms.indicators}
    for tok in _named_columns(terms):
        if tok.value not in known:
            raise FormulaError(
                f"the column {tok.value!r} is not in the data{did_you_mean(tok.value, columns)}",
                text,
                tok.pos,
                tok.length,
            )


# re-exported for the option merge (formula_merge) and the docs
KEYS = (ROLE_KEYS, TERM_KEYS)
