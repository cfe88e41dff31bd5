"""What a report cites, read from its own text, and the software it was made with.

The reference list of a report is not a fixed list: :func:`cited_references` reads every
author-year citation in the rendered sections (paragraphs, blocks, captions, table notes) and
keeps the full references of those works, so that a sentence that cites a work brings its
reference with it and a reference nobody cites is left out. :data:`CATALOGUE` holds every full
reference any report may cite (the joint model's, the mechanism models', continuous time's and
those of the sections around them); :func:`software_paragraph` and :func:`software_references`
cite the libraries, with the versions the fit recorded in its provenance
(:mod:`bayes_alliance.core.versions`) or, for a library it did not record, those installed when
the report is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from bayes_alliance.report import continuous as ct_report
from bayes_alliance.report import methods as report_methods

# Works cited by sections outside the methods paragraph (the classic comparison, the
# instability equations, the prior-sensitivity section).
SECTION_REFERENCES = {
    "Nickell 1981": (
        "Nickell, S. (1981). Biases in dynamic models with fixed effects. Econometrica, 49(6), "
        "1417-1426."
    ),
    "Rights 2023": (
        "Rights, J. D. (2023). Aberrant distortion of variance components in multilevel models "
        "under conflation of level-specific effects. Psychological Methods, 28(5), 1154-1177."
    ),
    "Hamaker et al. 2018": (
        "Hamaker, E. L., Asparouhov, T., Brose, A., Schmiedek, F., & Muthén, B. (2018). At the "
        "frontiers of modeling intensive longitudinal data: Dynamic structural equation models "
        "for the affective measurements from the COGITO study. Multivariate Behavioral "
        "Research, 53(6), 820-841."
    ),
    "Kallioinen et al. 2024": (
        "Kallioinen, N., Paananen, T., Bürkner, P.-C., & Vehtari, A. (2024). Detecting and "
        "diagnosing prior and likelihood sensitivity with power-scaling. Statistics and "
        "Computing, 34(1), 57."
    ),
}
# The libraries' own papers, cited by the software paragraph.
SOFTWARE_REFERENCES = {
    "Abril-Pla et al. 2023": (
        "Abril-Pla, O., Andreani, V., Carroll, C., Dong, L., Fonnesbeck, C. J., Kochurov, M., "
        "Kumar, R., Lao, J., Luhmann, C. C., Martin, O. A., Osthege, M., Vieira, R., Wiecki, "
        "T., & Zinkov, R. (2023). PyMC: A modern and comprehensive probabilistic programming "
        "framework in Python. PeerJ Computer Science, 9, e1516."
    ),
    "Kumar et al. 2019": (
        "Kumar, R., Carroll, C., Hartikainen, A., & Martin, O. (2019). ArviZ a unified library "
        "for exploratory analysis of Bayesian models in Python. Journal of Open Source "
        "Software, 4(33), 1143."
    ),
    "Harris et al. 2020": (
        "Harris, C. R., Millman, K. J., van der Walt, S. J., Gommers, R., Virtanen, P., "
        "Cournapeau, D., et al. (2020). Array programming with NumPy. Nature, 585(7825), "
        "357-362."
    ),
}
# Libraries without a paper of their own: cited as software, by name, version and address.
SOFTWARE_SITES = {
    "pytensor": "https://github.com/pymc-devs/pytensor",
    "nutpie": "https://github.com/pymc-devs/nutpie",
    "arviz-base": "https://github.com/arviz-devs/arviz-base",
    "arviz-stats": "https://github.com/arviz-devs/arviz-stats",
    "arviz-plots": "https://github.com/arviz-devs/arviz-plots",
}
SOFTWARE = (
    "bayes_alliance",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz-base",
    "arviz-stats",
    "arviz-plots",
    "numpy",
)

# An author-year citation: a capitalised surname, with "et al.", "& Surname" or
# "Surname, Surname & Surname" after it, then a year, possibly in parentheses; further years of
# the same authors may follow after a comma ("Rights & Sterba 2019, 2023").
_NAME = r"[A-Z][A-Za-zÀ-ÿ'\-]+"
_CITE = re.compile(
    rf"(?<![A-Za-z])({_NAME}(?:(?:,| &| and) {_NAME})*(?: et al\.)?),? \(?((?:19|20)\d\d)\b"
)
_MORE_YEARS = re.compile(r", ((?:19|20)\d\d)\b")  # matched right after a citation
# Capitalised words that precede a number without being an author.
_NOT_AUTHORS = frozenset({"Table", "Figure", "Session", "Sessions", "Python", "Patient"})


def _authors(first: str, count: int) -> tuple[str, int]:
    """A work's key part for its authors: the first surname and 1, 2 or 3 (three or more, the
    "et al." of a citation)."""
    return first, min(count, 3)


def citations(text: str) -> set[tuple[str, int, str]]:
    """The author-year citations of ``text`` as (first author's surname, number of authors
    (3 for three or more), year).

    "Rights & Sterba (2019; three levels: Rights & Sterba 2023)" gives ("Rights", 2, "2019")
    and ("Rights", 2, "2023"); "Rights 2023" ("Rights", 1, "2023"); "Lüdtke et al. 2008"
    ("Lüdtke", 3, "2008").
    """
    out = set()
    for m in _CITE.finditer(text):
        names = m[1]
        first = re.match(_NAME, names)
        assert first is not None  # the pattern starts with a name
        if first[0] in _NOT_AUTHORS:
            continue
        count = 3 if names.endswith("et al.") else 1 + len(re.findall(r",| &| and", names))
        key = _authors(first[0], count)
        out.add((*key, m[2]))
        pos = m.end()
        while more := _MORE_YEARS.match(text, pos):
            out.add((*key, more[1]))
            pos = more.end()
    return out


def reference_key(reference: str) -> tuple[str, int, str]:
    """(first author's surname, number of authors (3 for three or more), year) of a full
    reference in APA form ("Surname, I., & Surname, I. (2008). ...")."""
    year = re.search(r"\(((?:19|20)\d\d)\)", reference)
    if year is None:
        raise ValueError(f"a reference without a year in parentheses: {reference!r}")
    authors = reference[: year.start()]
    count = 3 if "et al." in authors else 1 + authors.count("., ")
    return (*_authors(reference.split(",")[0].strip(), count), year[1])


def catalogue() -> list[str]:
    """Every full reference a report may cite."""
    from bayes_alliance.report.mechanism_text import DURBIN_KOOPMAN, MECHANISM_REFERENCES

    return list(
        dict.fromkeys(
            [
                *report_methods.REFERENCES.values(),
                *report_methods.MEDIATION_REFERENCES.values(),
                *report_methods.MEASUREMENT_REFERENCES.values(),
                *ct_report.REFERENCES.values(),
                *MECHANISM_REFERENCES.values(),
                DURBIN_KOOPMAN,
                *SECTION_REFERENCES.values(),
                *SOFTWARE_REFERENCES.values(),
            ]
        )
    )


def cited_references(texts: Iterable[str]) -> list[str]:
    """The full references of the works cited in ``texts``, alphabetical.

    Raises
    ------
    ValueError
        When a text cites a work the catalogue does not hold (naming the citation), so a new
        citation cannot reach a report without its reference.
    """
    cited = set().union(*(citations(t) for t in texts))
    by_key = {reference_key(r): r for r in catalogue()}
    missing = sorted(c for c in cited if c not in by_key)
    if missing:
        raise ValueError(
            "cited without a reference: "
            + ", ".join(f"{a}{' et al.' if n == 3 else ''} {y}" for a, n, y in missing)
            + " (add the full reference to bayes_alliance.report.citations)"
        )
    return sorted(by_key[c] for c in cited)


def software_versions(provenance: Mapping[str, Any]) -> dict[str, str]:
    """The version of each library of :data:`SOFTWARE`: the fit's (its provenance) where
    recorded, else the installed one."""
    fitted = dict(provenance.get("versions", {}) or {})
    out = {}
    for lib in SOFTWARE:
        version = fitted.get(lib)
        if not version:
            try:
                version = metadata.version(lib)
            except metadata.PackageNotFoundError:
                version = "not installed"
        out[lib] = str(version)
    return out


def software_paragraph(provenance: Mapping[str, Any]) -> str:
    """The software sentence for a manuscript, with the versions and author-year citations."""
    v = software_versions(provenance)
    return (
        f"Models were fitted with bayes_alliance {v['bayes_alliance']} in Python, built in "
        f"PyMC {v['pymc']} (Abril-Pla et al. 2023) on PyTensor {v['pytensor']}, sampled with "
        f"nutpie {v['nutpie']} and summarised with ArviZ (arviz-base {v['arviz-base']}, "
        f"arviz-stats {v['arviz-stats']}, arviz-plots {v['arviz-plots']}; Kumar et al. 2019) "
        f"and NumPy {v['numpy']} (Harris et al. 2020)."
    )


def software_references(provenance: Mapping[str, Any]) -> list[str]:
    """Entries for the reference list of the libraries without a paper of their own, with the
    versions used."""
    v = software_versions(provenance)
    names = {"bayes_alliance": "bayes_alliance", "pytensor": "PyTensor", "nutpie": "nutpie"}
    names |= {k: k for k in ("arviz-base", "arviz-stats", "arviz-plots")}
    return [
        f"{name} (version {v[lib]}) [Computer software]. {SOFTWARE_SITES.get(lib, '')}".strip()
        for lib, name in names.items()
    ]


def section_texts(sections: Iterable[Any]) -> list[str]:
    """Every piece of text of report sections: titles, paragraphs, blocks, table captions and
    notes, figure captions."""
    out: list[str] = []
    for s in sections:
        out += [s.title, *s.paragraphs, *s.blocks]
        for t in s.tables:
            out += [t.caption, *t.legend, *_cells(t.frame)]
        out += [f.caption for f in s.figures]
    return out


def _cells(frame: Any) -> list[str]:
    """The text cells of a table (notes such as a prior's source may cite)."""
    return [str(c) for col in frame.columns for c in frame[col] if isinstance(c, str)]


__all__ = [
    "SECTION_REFERENCES",
    "SOFTWARE",
    "SOFTWARE_REFERENCES",
    "catalogue",
    "citations",
    "cited_references",
    "reference_key",
    "section_texts",
    "software_paragraph",
    "software_references",
    "software_versions",
]
