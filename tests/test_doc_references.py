"""Every pointer into the documentation that the package's code, messages and the
architecture notes give can be followed: the page exists in docs/ and a named section is one
of its headings; nothing points to METHODS.md, which is not part of the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# docs/page.md, optionally followed by the section(s) it names: ", section 'X'",
# " (section 'X')", ', "X"', " (\"X\")" or "sections 'X' and 'Y'".
REFERENCE = re.compile(
    r"docs/(?P<page>[a-z_]+\.md)"
    r"(?P<tail>,? ?\(?(?:sections? )?(?P<q>['\"])[^'\"]+(?P=q)(?: and (?P=q)[^'\"]+(?P=q))?)?"
)


def _sources() -> dict[Path, str]:
    files = [*sorted((ROOT / "bayes_alliance").rglob("*.py")), ROOT / "ARCHITECTURE.md"]
    files += [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    # Lines joined (comment markers and indentation dropped) so that a reference broken over
    # two lines reads as one.
    return {
        f: re.sub(r"\s*\n\s*(#\s*)?", " ", f.read_text(encoding="utf-8"))
        for f in files
        if f.exists()
    }


def _headings(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    return {m.group(1).strip() for m in re.finditer(r"^#+\s+(.+)$", text, re.M)}


def test_no_reference_to_methods_md():
    bad = [str(f.relative_to(ROOT)) for f, text in _sources().items() if "METHODS" in text]
    assert not bad, f"these still point to METHODS.md (outside the repository): {bad}"


def test_every_docs_reference_names_an_existing_page_and_section():
    problems = []
    seen = 0
    for f, text in _sources().items():
        for m in REFERENCE.finditer(text):
            seen += 1
            page = ROOT / "docs" / m.group("page")
            if not page.exists():
                problems.append(f"{f.relative_to(ROOT)}: {m.group(0)!r}: no such page")
                continue
            if m.group("tail"):
                heads = _headings(page)
                for name in re.findall(r"['\"]([^'\"]+)['\"]", m.group("tail")):
                    # a heading may go on after the name: "Measurement error (`--...`)",
                    # "Mechanism models: within-level mediation, ..."
                    if not any(h == name or h.startswith((name + " (", name + ":")) for h in heads):
                        problems.append(
                            f"{f.relative_to(ROOT)}: section {name!r} not in {page.name}"
                        )
    assert seen > 20  # the pattern finds the references (not an empty pass)
    assert not problems, "\n".join(problems)
