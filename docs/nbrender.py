"""The tutorials as Jupyter notebooks: percent-format script -> .ipynb -> executed -> Markdown page.

The scripts in ``notebooks/`` (``# %%`` cells) stay the source of truth under version control;
jupytext turns each into a notebook, nbclient runs it on a kernel of this Python (the ``python3``
kernel that ipykernel provides for ``sys.executable``, never a kernel registered elsewhere on the
machine), and :func:`to_markdown` writes the executed cells as a MyST page for the Sphinx site.
``docs/build.py`` uses all of it; run as a script, this module writes the notebooks for Jupyter::

    python docs/nbrender.py                      # notebooks/*.ipynb, not executed (seconds)
    python docs/nbrender.py --execute --profile small --out build/notebooks

A notebook written here records the hash of the script it came from. One that has been edited
since (its cells no longer match that hash) is the reader's work and is replaced only with
``--force``; one that was merely run is replaced (its outputs are recomputed from the script).
"""

from __future__ import annotations

import argparse
import base64
import difflib
import hashlib
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bayes_alliance.core.files import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FORMAT = "py:percent"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
PROFILE = "_profile.py"  # the tutorials' sampler settings, imported by each
# Notebook metadata key holding the source hash (jupytext leaves it out of the script form).
META = "bayes_alliance"


ANSI = re.compile(r"\x1b\[[0-9;]*m")


class NotebookFailed(RuntimeError):
    """A cell of a tutorial raised; the message names the notebook and the cell."""


def tutorials(folder: Path = NOTEBOOKS) -> list[Path]:
    """The tutorial scripts (``NN_name.py``) in reading order; helpers such as ``_profile.py`` are not."""
    return sorted(folder.glob("[0-9]*.py"))


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def to_notebook(source: str) -> nbformat.NotebookNode:
    """A percent-format script as an (unexecuted) notebook that opens on a Python 3 kernel."""
    nb = jupytext.reads(source, fmt=FORMAT)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata[META] = {"source_sha256": source_hash(source)}
    return nb


def to_script(notebook_text: str) -> str:
    """The percent-format script of a notebook file's text (outputs and metadata dropped)."""
    return str(jupytext.writes(nbformat.reads(notebook_text, as_version=4), fmt=FORMAT))


def cells(source: str) -> list[tuple[str, str]]:
    """A percent-format script as (kind, text) cells, kind ``"markdown"`` or ``"code"``."""
    nb = jupytext.reads(source, fmt=FORMAT)
    return [(c.cell_type, c.source) for c in nb.cells if c.source.strip()]


def round_trip_diff(notebook_text: str, source: str, name: str) -> str:
    """Empty when the notebook converts back to exactly ``source``; otherwise a unified diff."""
    back = to_script(notebook_text)
    if back == source:
        return ""
    lines = difflib.unified_diff(
        source.splitlines(True), back.splitlines(True), f"{name} (script)", f"{name} (notebook)"
    )
    return "".join(lines) or "the texts differ only in line endings"


def kernel_manager() -> KernelManager:
    """A kernel manager whose ``python3`` is this interpreter with ipykernel.

    ``kernel_dirs=[]`` hides kernels registered in the user's or the system's Jupyter folders, so
    a ``python3`` kernelspec pointing at another Python cannot run the tutorials.
    """
    specs = KernelSpecManager(kernel_dirs=[])
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def execute(
    nb: nbformat.NotebookNode, cwd: Path, *, name: str, timeout: int | None = 3600
) -> nbformat.NotebookNode:
    """Run every cell in order on a fresh kernel started in ``cwd``; outputs are stored in ``nb``.

    The kernel inherits this process's environment (``BAYES_ALLIANCE_PROFILE`` chooses the
    sampler profile) with matplotlib's inline backend. ``timeout`` is per cell, in seconds.

    Raises
    ------
    NotebookFailed
        A cell raised: the message names the notebook, the cell's number and first line, and
        holds the kernel's traceback.
    """
    client = NotebookClient(
        nb,
        km=kernel_manager(),
        timeout=timeout,
        # ipykernel warns on every start that its local TCP sockets are unencrypted: noise here.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": str(cwd)}},
    )
    # Figures as inline images whatever backend this shell chose (an Agg here would drop them).
    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    try:
        # cleanup_kc: shut the kernel down after the last cell (nbclient leaves a kernel it was
        # handed running, holding the tutorial's fits until this process ends).
        client.execute(env=env, cleanup_kc=True)
    except CellExecutionError as exc:
        raise NotebookFailed(_failure(nb, name, exc)) from None
    return nb


def _failure(nb: nbformat.NotebookNode, name: str, exc: CellExecutionError) -> str:
    """Which cell raised what, with the kernel's traceback in plain text (no colour codes)."""
    for number, cell in enumerate(nb.cells, 1):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0]
                trace = ANSI.sub("", "\n".join(out.get("traceback", [])))
                head = f"{name}: cell {number} (`{first}`) raised {out['ename']}: {out['evalue']}"
                return f"{head}\n{trace}"
    return f"{name}: {ANSI.sub('', str(exc))}"


def _block(lang: str, text: str) -> list[str]:
    fence = "````" if "```" in text else "```"
    return [f"{fence}{lang}", text.rstrip("\n"), fence, ""]


def _output(out: Any, stem: str, folder: Path) -> list[str]:
    kind = out.get("output_type")
    if kind == "stream":
        # stderr holds warnings and logging of the build machine, not the tutorial's result:
        # it stays in the .ipynb and is left off the page.
        return _block("text", out["text"]) if out.get("name") == "stdout" else []
    if kind not in ("execute_result", "display_data"):
        return []
    data = out.get("data", {})
    for mime, suffix in (("image/png", ".png"), ("image/svg+xml", ".svg")):
        if mime in data:
            path = folder / f"{stem}{suffix}"
            if suffix == ".png":
                path.write_bytes(base64.b64decode(data[mime]))
            else:
                path.write_text(data[mime])
            return [f"![output]({path.name})", ""]
    html = data.get("text/html")
    if html and "<script" not in html:
        return _block("{raw} html", html)
    if "text/plain" in data:
        return _block("text", data["text/plain"])
    return []


def to_markdown(
    nb: nbformat.NotebookNode, stem: str, folder: Path, *, after_title: str = ""
) -> str:
    """An executed notebook as a MyST page; its images are written into ``folder`` beside it.

    Markdown cells are copied, code cells become Python blocks followed by their printed output,
    tables (HTML), images and the text of their last expression. ``after_title`` is inserted
    after the first cell (the title).
    """
    page: list[str] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            page += [cell.source, ""]
        elif cell.cell_type == "code" and cell.source.strip():
            page += _block("python", cell.source)
            for j, out in enumerate(cell.get("outputs", [])):
                page += _output(out, f"{stem}_{i}_{j}", folder)
        if i == 0 and after_title:
            page += [after_title, ""]
    return "\n".join(page)


def _replaceable(path: Path) -> bool:
    """Whether an existing notebook file is one written here and not edited since."""
    try:
        text = path.read_text()
        recorded = nbformat.reads(text, as_version=4).metadata.get(META, {}).get("source_sha256")
        return recorded == source_hash(to_script(text))
    except Exception:  # not a notebook this module can read: the reader's file
        return False


def write_notebooks(
    out: Path, *, execute_them: bool = False, force: bool = False, folder: Path = NOTEBOOKS
) -> list[Path]:
    """Write each tutorial as ``out/NN_name.ipynb`` (executed with ``execute_them``).

    Raises
    ------
    FileExistsError
        A notebook in ``out`` was edited since it was written (or not written here) and
        ``force`` is not set: nothing is written, and the message names every such file.
    """
    targets = [(script, out / f"{script.stem}.ipynb") for script in tutorials(folder)]
    kept = [t for _, t in targets if t.exists() and not force and not _replaceable(t)]
    helper, helper_copy = folder / PROFILE, out / PROFILE
    separate = out.resolve() != folder.resolve()
    if separate and helper_copy.exists() and not force:
        if helper_copy.read_text() != helper.read_text():
            kept.append(helper_copy)
    if kept:
        names = ", ".join(str(t) for t in kept)
        raise FileExistsError(
            f"{names}: edited since it was written from notebooks/ (or not written by this "
            "tool); pass --force (make notebooks FORCE=1) to replace it"
        )
    for script, target in targets:
        nb = to_notebook(script.read_text())
        if execute_them:
            start = time.perf_counter()
            print(f"running {script.name}", flush=True)
            execute(nb, script.parent, name=script.name)
            print(f"  {time.perf_counter() - start:.0f} s", flush=True)
        atomic_write_text(target, nbformat.writes(nb) + "\n", force=True)
    if separate:  # the tutorials import their sampler settings from it
        atomic_write_text(helper_copy, helper.read_text(), force=True)
    return [t for _, t in targets]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the tutorials as Jupyter notebooks (.ipynb).")
    ap.add_argument("--out", type=Path, default=NOTEBOOKS, help="folder (default: notebooks/)")
    ap.add_argument("--execute", action="store_true", help="run them and keep the outputs")
    ap.add_argument("--profile", choices=["small", "full"], help="sampler profile when executing")
    ap.add_argument("--force", action="store_true", help="replace notebooks edited since written")
    args = ap.parse_args(argv)
    if args.profile:
        os.environ["BAYES_ALLIANCE_PROFILE"] = args.profile
    try:
        written = write_notebooks(args.out, execute_them=args.execute, force=args.force)
    except (FileExistsError, NotebookFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} notebooks to {args.out}; open them with: jupyter lab {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
