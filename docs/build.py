"""Build the documentation: CLI reference, executed notebooks, then Sphinx with warnings as errors.

Usage: ``python docs/build.py [--profile small|full]``. The notebooks in ``notebooks/`` are
percent-format Python files (``# %%`` cells); each is executed cell by cell, and its code and
output become a Markdown page. Any exception in a notebook fails the build.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GEN = DOCS / "notebooks"
NOTEBOOKS = ROOT / "notebooks"


def cli_reference() -> str:
    from bayes_alliance.cli.app import build_parser

    parser = build_parser()
    parts = ["# Command-line reference", "", "```text", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        parts += [f"## bayes-alliance {name}", "", "```text", p.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def cells(source: str) -> list[tuple[str, str]]:
    """Split a percent-format script into (kind, text) cells."""
    out: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            out.append(("markdown" if "[markdown]" in line else "code", []))
        elif out:
            out[-1][1].append(line)
    result = []
    for kind, lines in out:
        if kind == "markdown":
            text = "\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines)
        else:
            text = "\n".join(lines)
        if text.strip():
            result.append((kind, text.strip("\n")))
    return result


def _show(value: object) -> str:
    to_string = getattr(value, "to_string", None)
    return str(to_string()) if callable(to_string) else repr(value)


def run_notebook(path: Path) -> str:
    """Execute a notebook script and return it as Markdown with outputs."""
    ns: dict[str, object] = {"__name__": "__main__"}
    page = []
    cwd = os.getcwd()
    os.chdir(path.parent)
    sys.path.insert(0, str(path.parent))
    try:
        for kind, text in cells(path.read_text()):
            if kind == "markdown":
                page += [text, ""]
                continue
            page += ["```python", text, "```", ""]
            tree = ast.parse(text)
            last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            body = ast.Module(body=tree.body[:-1] if last else tree.body, type_ignores=[])
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(body, str(path), "exec"), ns)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), str(path), "eval"), ns)
                    if value is not None:
                        print(_show(value))
            if buf.getvalue().strip():
                page += ["```text", buf.getvalue().rstrip(), "```", ""]
    finally:
        os.chdir(cwd)
        sys.path.remove(str(path.parent))
    return "\n".join(page)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile", default="small", choices=["small", "full"])
    args = ap.parse_args()
    os.environ["BAYES_ALLIANCE_PROFILE"] = args.profile
    if GEN.exists():
        shutil.rmtree(GEN)
    GEN.mkdir()
    (DOCS / "cli.md").write_text(cli_reference())
    books = sorted(NOTEBOOKS.glob("[0-9]*.py"))
    if not books:
        print("no notebooks found", file=sys.stderr)
        return 1
    index = [
        "# Tutorials",
        "",
        f"Executed with the `{args.profile}` sampler profile.",
        "",
        "```{toctree}",
        ":maxdepth: 1",
        "",
    ]
    for nb in books:
        print(f"running {nb.name}", flush=True)
        (GEN / f"{nb.stem}.md").write_text(run_notebook(nb))
        index.append(nb.stem)
    index += ["```", ""]
    (GEN / "index.md").write_text("\n".join(index))
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        str(DOCS),
        str(DOCS / "_build" / "html"),
    ]
    return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
