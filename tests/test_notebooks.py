"""The tutorials as Jupyter notebooks (docs/nbrender.py, used by docs/build.py and `make notebooks`).

`make test` executes every tutorial once, as a notebook, in docs/build.py (which also checks
that each executed .ipynb converts back to its script); here the machinery is tested on a tiny
notebook, every tutorial's round trip is checked without running it, and the `slow` tests run
each tutorial on its own kernel.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import nbrender  # noqa: E402

sys.path.remove(str(ROOT / "docs"))

TUTORIALS = nbrender.tutorials()

TINY = """# %% [markdown]
# # A tiny notebook
#
# Two code cells.

# %%
import os
import sys

import matplotlib.pyplot as plt
from helper import VALUE

print("profile", os.environ.get("BAYES_ALLIANCE_PROFILE"), "value", VALUE)
print("python", sys.executable)
sys.stderr.write("noise " * 3)

# %%
fig, ax = plt.subplots()
ax.plot([0, 1], [1, 0])
plt.show()
{"answer": 6 * 7}
"""


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[nbformat.NotebookNode, Path]]:
    """The tiny notebook executed once on the venv's kernel, in a folder holding its helper."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "helper.py").write_text("VALUE = 17\n")
    mp = pytest.MonkeyPatch()
    mp.setenv("BAYES_ALLIANCE_PROFILE", "small")
    mp.setenv("MPLBACKEND", "Agg")  # a non-inline backend in the shell still gives images
    try:
        nb = nbrender.execute(nbrender.to_notebook(TINY), folder, name="tiny.py", timeout=120)
        yield nb, folder
    finally:
        mp.undo()


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_round_trips_through_jupytext(script: Path) -> None:
    """py -> ipynb (the file's text) -> py gives back the script byte for byte."""
    source = script.read_text()
    nb = nbrender.to_notebook(source)
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    assert nbrender.round_trip_diff(text, source, script.name) == ""
    assert nbrender.to_script(text) == source
    # It opens on a Python 3 kernel and has as many cells as the script has `# %%` markers.
    assert json.loads(text)["metadata"]["kernelspec"]["name"] == "python3"
    markers = sum(line.startswith("# %%") for line in source.splitlines())
    assert len(nb.cells) == markers


def test_there_are_tutorials_and_helpers_are_not_among_them() -> None:
    names = [p.name for p in TUTORIALS]
    assert len(names) >= 7 and "01_quickstart.py" in names
    assert all(n[:2].isdigit() for n in names)


def test_round_trip_diff_names_the_changed_line() -> None:
    source = "# %%\nx = 1\n"
    edited = nbrender.to_notebook(source)
    edited.cells[0].source = "x = 2"
    diff = nbrender.round_trip_diff(nbformat.writes(edited), source, "t.py")
    assert "-x = 1" in diff and "+x = 2" in diff and "t.py (notebook)" in diff


def test_cells_as_the_docs_read_them() -> None:
    parts = nbrender.cells(TINY)
    assert [k for k, _ in parts] == ["markdown", "code", "code"]
    assert parts[0][1] == "# A tiny notebook\n\nTwo code cells."
    assert parts[2][1].endswith('{"answer": 6 * 7}')


def test_kernel_is_this_python() -> None:
    """A `python3` kernelspec registered elsewhere cannot take over: only ipykernel's own."""
    spec = nbrender.kernel_manager().kernel_spec
    assert spec is not None and spec.argv[0] == sys.executable


def test_executes_as_a_notebook(tiny_run: tuple[nbformat.NotebookNode, Path]) -> None:
    nb, _ = tiny_run
    first, second = (c for c in nb.cells if c.cell_type == "code")
    stdout = "".join(o["text"] for o in first.outputs if o.get("name") == "stdout")
    # The kernel ran in the notebook's folder (its helper imported), with this environment,
    # on this interpreter.
    assert "profile small value 17" in stdout
    assert f"python {sys.executable}" in stdout
    assert any(o.get("name") == "stderr" for o in first.outputs)
    kinds = [o["output_type"] for o in second.outputs]
    assert "display_data" in kinds and "execute_result" in kinds
    image = next(o for o in second.outputs if o["output_type"] == "display_data")
    assert "image/png" in image["data"]
    result = next(o for o in second.outputs if o["output_type"] == "execute_result")
    assert result["data"]["text/plain"] == "{'answer': 42}"
    assert nbrender.round_trip_diff(nbformat.writes(nb), TINY, "tiny.py") == ""


def test_page_of_an_executed_notebook(
    tiny_run: tuple[nbformat.NotebookNode, Path], tmp_path: Path
) -> None:
    nb, _ = tiny_run
    page = nbrender.to_markdown(nb, "tiny", tmp_path, after_title="DOWNLOAD LINE")
    lines = page.splitlines()
    assert lines[0] == "# A tiny notebook"
    assert page.index("DOWNLOAD LINE") < page.index("```python")
    assert "profile small value 17" in page
    assert "noise noise noise" not in page  # stderr stays in the notebook
    assert "{'answer': 42}" in page
    images = sorted(tmp_path.glob("tiny_*.png"))
    assert len(images) == 1 and images[0].read_bytes().startswith(b"\x89PNG")
    assert f"![output]({images[0].name})" in page


def test_failing_cell_names_notebook_and_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    managers = []

    def recording() -> KernelManager:
        managers.append(make_manager())
        return managers[-1]

    make_manager = nbrender.kernel_manager
    monkeypatch.setattr(nbrender, "kernel_manager", recording)
    source = "# %%\nx = 1\n\n# %%\nraise ValueError('boom in cell two')\n"
    with pytest.raises(nbrender.NotebookFailed) as err:
        nbrender.execute(nbrender.to_notebook(source), tmp_path, name="bad.py", timeout=120)
    # The kernel was shut down, not left holding the notebook's objects.
    assert len(managers) == 1 and managers[0].has_kernel is False
    message = str(err.value)
    assert message.startswith(
        "bad.py: cell 2 (`raise ValueError('boom in cell two')`) raised ValueError: boom in cell two"
    )
    assert "\x1b[" not in message  # the traceback in plain text


def _scripts(folder: Path) -> Path:
    folder.mkdir()
    (folder / "01_first.py").write_text("# %% [markdown]\n# # First\n\n# %%\nx = 1\n")
    (folder / "02_second.py").write_text("# %%\nfrom _profile import DRAWS\n")
    (folder / "_profile.py").write_text("DRAWS = 3\n")
    return folder


def test_make_notebooks_writes_and_protects_edits(tmp_path: Path) -> None:
    src = _scripts(tmp_path / "src")
    out = tmp_path / "out"
    written = nbrender.write_notebooks(out, folder=src)
    assert [p.name for p in written] == ["01_first.ipynb", "02_second.ipynb"]
    assert (out / "_profile.py").read_text() == "DRAWS = 3\n"
    assert nbrender.to_script(written[0].read_text()) == (src / "01_first.py").read_text()
    # Run but not edited (outputs added): replaced without asking.
    nb = nbformat.read(written[0], as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    nbformat.write(nb, written[0])
    nbrender.write_notebooks(out, folder=src)
    assert "ran" not in written[0].read_text()
    # Edited by the reader: refused, naming the file; nothing is written.
    nb = nbformat.read(written[1], as_version=4)
    nb.cells[0].source += "\nprint('my own line')"
    nbformat.write(nb, written[1])
    (src / "01_first.py").write_text("# %%\nx = 2\n")
    with pytest.raises(FileExistsError, match=r"02_second\.ipynb: edited since"):
        nbrender.write_notebooks(out, folder=src)
    assert "x = 1" in written[0].read_text() and "my own line" in written[1].read_text()
    # With force, replaced.
    nbrender.write_notebooks(out, folder=src, force=True)
    assert "my own line" not in written[1].read_text() and "x = 2" in written[0].read_text()


def test_make_notebooks_refuses_a_foreign_file(tmp_path: Path) -> None:
    src = _scripts(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "01_first.ipynb").write_text("not a notebook")
    (out / "_profile.py").write_text("DRAWS = 5000  # mine\n")
    with pytest.raises(FileExistsError) as err:
        nbrender.write_notebooks(out, folder=src)
    assert "01_first.ipynb" in str(err.value) and "_profile.py" in str(err.value)
    assert (out / "01_first.ipynb").read_text() == "not a notebook"
    assert nbrender.main(["--out", str(out)]) == 1  # the command line says so and fails


@pytest.mark.slow
@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_as_a_notebook(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tutorial end to end on a kernel, small profile (docs/build.py does this in `make test`)."""
    monkeypatch.setenv("BAYES_ALLIANCE_PROFILE", "small")
    source = script.read_text()
    nb = nbrender.execute(nbrender.to_notebook(source), script.parent, name=script.name)
    assert nbrender.round_trip_diff(nbformat.writes(nb), source, script.name) == ""
    page = nbrender.to_markdown(nb, script.stem, tmp_path)
    assert page.startswith("# ")
