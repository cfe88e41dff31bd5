"""Build the documentation: CLI reference, executed notebooks, then Sphinx with warnings as errors.

Usage: ``python docs/build.py [--profile small|full]``. The notebooks in ``notebooks/`` are
percent-format Python files (``# %%`` cells); each is converted to a Jupyter notebook (jupytext),
executed on a kernel of this Python (nbclient; see ``nbrender.py``), checked to convert back to
exactly its script, and written twice: as ``docs/notebooks/NN_name.ipynb`` with its outputs (a
download on its page) and as a Markdown page. Any exception in a notebook fails the build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import nbrender
from nbrender import cells as cells  # re-exported: tests read the tutorials' cells here

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


def render(script: Path, profile: str) -> float:
    """Execute one tutorial as a notebook; write its .ipynb and its page into GEN. Returns seconds.

    Fails (``NotebookFailed``, ``RuntimeError``) when a cell raises or when the executed notebook
    does not convert back to exactly its script.
    """
    start = time.perf_counter()
    source = script.read_text()
    nb = nbrender.execute(nbrender.to_notebook(source), script.parent, name=script.name)
    text = nbformat.writes(nb) + "\n"
    diff = nbrender.round_trip_diff(text, source, script.name)
    if diff:
        raise RuntimeError(f"{script.name} does not round-trip through jupytext:\n{diff}")
    (GEN / f"{script.stem}.ipynb").write_text(text)
    links = (
        f"Download this tutorial as a Jupyter notebook, executed with the `{profile}` profile: "
        f"{{download}}`{script.stem}.ipynb`, with {{download}}`_profile.py` (its sampler settings) "
        f"in the same folder. Its source is `notebooks/{script.name}` in the repository."
    )
    (GEN / f"{script.stem}.md").write_text(
        nbrender.to_markdown(nb, script.stem, GEN, after_title=links)
    )
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile", default="small", choices=["small", "full"])
    args = ap.parse_args()
    os.environ["BAYES_ALLIANCE_PROFILE"] = args.profile
    if GEN.exists():
        shutil.rmtree(GEN)
    GEN.mkdir()
    (DOCS / "cli.md").write_text(cli_reference())
    books = nbrender.tutorials(NOTEBOOKS)
    if not books:
        print("no notebooks found", file=sys.stderr)
        return 1
    shutil.copy(NOTEBOOKS / nbrender.PROFILE, GEN / nbrender.PROFILE)
    index = [
        "# Tutorials",
        "",
        f"Executed with the `{args.profile}` sampler profile. Each page offers its notebook",
        "(`.ipynb`, with these outputs) for download; put `_profile.py` beside it. In the",
        "repository, `make notebooks` writes them next to their scripts, and",
        "`jupyter lab notebooks/` opens them (`make lab` installs JupyterLab and starts it).",
        "",
        "```{toctree}",
        ":maxdepth: 1",
        "",
    ]
    total = 0.0
    for nb in books:
        print(f"running {nb.name}", flush=True)
        seconds = render(nb, args.profile)
        total += seconds
        print(f"  {seconds:.0f} s", flush=True)
        index.append(nb.stem)
    print(f"notebooks: {total:.0f} s", flush=True)
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
