"""Equations typeset as presentation MathML, which browsers render without downloading a
maths renderer (the report stays one self-contained page).

The model's equations are written once, as text in a small linear notation
(:func:`bayes_alliance.report.model_text.equations`, the mechanism models' and continuous time's
alike), which the Markdown report keeps as it is. :func:`equations_html` typesets that text for
the HTML page: lines indented by two spaces are equations, the others headings in words. The
notation:

- ``x^w_ti``: base ``x`` with superscript ``w`` and subscript ``ti``; a script is letters and
  digits joined by ``,`` or ``-`` (``y^w_t-1,i``); ``{...}`` braces a script with spaces;
- ``w_(t-1)i``: a script in parentheses, with what follows it (``(t-1)i``);
- ``Phi``, ``Sigma``, ``omega`` and the other Greek letters' names are set as the letters;
- ``σ_Px²``: a trailing ``²`` is a superscript 2; a prime or ``*`` after the base (``c'``,
  ``Φ*``) is set as a superscript as well;
- a word of two or more letters is text (``diag``, ``exp`` and other functions in upright
  type), runs of words become one text span, so a parenthetical remark stays readable;
- numbers are ``mn``; ``= + - ~ ( ) [ ] , ; : / √`` and the like are operators; two or more
  spaces separate two equations on one line.
"""

from __future__ import annotations

import html
import re

# Words set as upright function names rather than as text.
FUNCTIONS = frozenset(
    {"diag", "exp", "log", "Var", "Cov", "Corr", "corr", "expm", "logit", "N", "MVN", "tr"}
)
_SCRIPT = r"(?:\{[^{}]*\}|\([^()]*\)[A-Za-z0-9]*|[A-Za-z0-9]+(?:[,\-][A-Za-z0-9]+)*)"
# Greek letters spelled in ASCII (the mechanism models' equations): set as the letter.
GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "eps": "ε", "epsilon": "ε",
    "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν", "rho": "ρ", "sigma": "σ",
    "tau": "τ", "phi": "φ", "omega": "ω", "Phi": "Φ", "Sigma": "Σ", "Omega": "Ω",
    "Gamma": "Γ", "Delta": "Δ", "Lambda": "Λ",
}  # fmt: skip
_TOKEN = re.compile(
    rf"""(?P<space>\s+)
    |(?P<number>\d+(?:\.\d+)?)
    |(?P<base>[A-Za-z]{{2,}}|[^\W\d_])(?P<mark>['*′]*)(?P<scripts>(?:[_^]{_SCRIPT})*)(?P<post>['′]?)(?P<square>²?)
    |(?P<op>[^\s\w])
    |(?P<other>.)""",
    re.VERBOSE,
)
_OPERATORS = {"-": "\u2212", "'": "\u2032", "*": "*"}


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _script(text: str) -> str:
    """A sub- or superscript's content: letter runs as identifiers, digits as numbers, the
    rest as operators."""
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    elif text.startswith("("):  # w_(t-1)i: the parenthesised part and what follows
        text = text[1:].replace(")", "", 1)
    parts = []
    for m in re.finditer(r"[^\W\d_]+|\d+|\S", text):
        s = m[0]
        if s.isdigit():
            parts.append(f"<mn>{s}</mn>")
        elif s[0].isalpha():
            # Several letters are one index (``ti``, ``Px``), italic like a single one.
            variant = " mathvariant='italic'" if len(s) > 1 else ""
            parts.append(f"<mi{variant}>{_esc(s)}</mi>")
        else:
            parts.append(f"<mo>{_esc(_OPERATORS.get(s, s))}</mo>")
    return parts[0] if len(parts) == 1 else "<mrow>" + "".join(parts) + "</mrow>"


def _identifier(m: re.Match[str]) -> tuple[str, str]:
    """(kind, MathML) of an identifier with its scripts; kind "text" for a word."""
    base, mark, scripts = m["base"], m["mark"], m["scripts"]
    post, square = m["post"], m["square"]
    base = GREEK.get(base, base)
    if len(base) > 1 and not (mark or scripts or post or square):
        if base in FUNCTIONS:
            return "math", f"<mi mathvariant='normal'>{_esc(base)}</mi>"
        return "text", base
    variant = " mathvariant='normal'" if base in FUNCTIONS and len(base) == 1 else ""
    element = f"<mi{variant}>{_esc(base)}</mi>"
    subs: list[str] = []
    sups: list[str] = []
    sups += [f"<mo>{_esc(_OPERATORS.get(c, c))}</mo>" for c in mark]
    for s in re.finditer(rf"([_^])({_SCRIPT})", scripts):
        (subs if s[1] == "_" else sups).append(_script(s[2]))
    if post:
        sups.append("<mo>\u2032</mo>")
    if square:
        sups.append("<mn>2</mn>")

    def row(items: list[str]) -> str:
        return items[0] if len(items) == 1 else "<mrow>" + "".join(items) + "</mrow>"

    if subs and sups:
        return "math", f"<msubsup>{element}{row(subs)}{row(sups)}</msubsup>"
    if subs:
        return "math", f"<msub>{element}{row(subs)}</msub>"
    if sups:
        return "math", f"<msup>{element}{row(sups)}</msup>"
    return "math", element


def math_line(text: str, display: bool = True) -> str:
    """One line of the notation as a ``<math>`` element (see the module's notes).

    Parameters
    ----------
    text
        The line, e.g. ``"y^w_ti = φ_yx x^w_t-1,i + e^y_ti"``.
    display
        A block (``display="block"``) rather than inline maths.

    Returns
    -------
    str
        Well-formed presentation MathML.
    """
    items: list[tuple[str, str]] = []  # (kind, content): kind math, text or gap
    for m in _TOKEN.finditer(text.strip()):
        if m["space"]:
            items.append(("gap", "wide" if len(m["space"]) > 1 else "narrow"))
        elif m["number"]:
            items.append(("math", f"<mn>{m['number']}</mn>"))
        elif m["base"]:
            items.append(_identifier(m))
        else:
            s = m["op"] or m["other"]
            items.append(("math", f"<mo>{_esc(_OPERATORS.get(s, s))}</mo>"))
    out: list[str] = []
    words: list[str] = []

    def flush() -> None:
        if words:
            out.append(f"<mtext>\u00a0{_esc(' '.join(words))}\u00a0</mtext>")
            words.clear()

    for i, (kind, content) in enumerate(items):
        if kind == "text":
            words.append(content)
        elif kind == "gap":
            # A space inside a run of words stays in the text; between equations it is wide.
            nxt = items[i + 1][0] if i + 1 < len(items) else ""
            if words and nxt == "text":
                continue
            flush()
            if content == "wide":
                out.append("<mspace width='2em'/>")
        else:
            flush()
            out.append(content)
    flush()
    mode = "block" if display else "inline"
    return (
        f"<math xmlns='http://www.w3.org/1998/Math/MathML' display='{mode}'><mrow>"
        + "".join(out)
        + "</mrow></math>"
    )


def equations_html(block: str) -> str:
    """A block of equations (lines indented by two spaces) and headings (other lines) as HTML:
    each equation a display ``<math>`` element, each heading a paragraph."""
    parts = ["<div class='equations'>"]
    for line in block.splitlines():
        if not line.strip():
            continue
        if line.startswith("  "):
            parts.append(math_line(line))
        else:
            parts.append(f"<p class='eqhead'>{html.escape(line)}</p>")
    parts.append("</div>")
    return "".join(parts)


__all__ = ["FUNCTIONS", "equations_html", "math_line"]
