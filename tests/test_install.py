"""The built wheel works outside the repository: specs by name, ``--version``, the entry point.

The wheel is built from a copy of the sources (the checkout is left untouched) and installed
with ``pip install --target`` into a temporary folder; the checks run from a folder outside the
repository, with that folder first on ``sys.path`` and Python's isolated mode (``-I``: no
working folder, no ``PYTHON*`` variables, no user site), so they see the installed copy, not
the checkout. The dependencies come from this virtual environment (no network is used).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ("cross_lagged", "random_slopes", "riclpm", "single_equation")
PIP_ENV = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}

CHECK = """
import io, json, sys, contextlib
sys.path.insert(0, sys.argv[1])
import bayes_alliance
from bayes_alliance.spec import specfile
from bayes_alliance.cli.app import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main(["--version"])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({
    "package": bayes_alliance.__file__,
    "shipped": specfile.shipped_specs(),
    "paths": {n: str(specfile.load_spec(n).path) for n in specfile.shipped_specs()},
    "version": out.getvalue().strip(),
    "version_exit": code,
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "bayes_alliance",
        src / "bayes_alliance",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    pip = [sys.executable, "-m", "pip", "--quiet"]
    wheel_cmd = ["wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(src)]
    subprocess.run([*pip, *wheel_cmd], check=True, env=PIP_ENV, cwd=base)
    (wheel,) = (base / "dist").glob("bayes_alliance-*.whl")
    target = base / "site"
    install_cmd = ["install", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run([*pip, *install_cmd], check=True, env=PIP_ENV, cwd=base)
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return wheel, target, elsewhere


def test_wheel_holds_the_specs_and_the_example_data(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"bayes_alliance/specs/{n}.toml" for n in SPECS} <= names
    assert "bayes_alliance/datasets/example.csv" in names
    assert "bayes_alliance/datasets/mediation_between.csv" in names
    for name in ("mediation_within", "informants"):
        assert {f"bayes_alliance/datasets/{name}.{ext}" for ext in ("csv", "json")} <= names
    assert not [n for n in names if n.startswith(("models/", "tests/"))]


def test_installed_package_finds_its_specs_by_name_and_knows_its_version(installed):
    wheel, target, elsewhere = installed
    run = subprocess.run(
        [sys.executable, "-I", "-c", CHECK, str(target)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(got["package"]).is_relative_to(target)  # the installed copy, not the checkout
    assert set(SPECS) <= set(got["shipped"])
    for name, path in got["paths"].items():
        assert Path(path) == target / "bayes_alliance" / "specs" / f"{name}.toml"
    version = wheel.name.split("-")[1]  # the version pyproject.toml gave the wheel
    assert got["version"] == f"bayes-alliance {version}" and got["version_exit"] == 0


def test_installed_command_runs_a_shipped_spec_by_name(installed):
    wheel, target, elsewhere = installed
    command = target / "bin" / "bayes-alliance"
    env = {**os.environ, "PYTHONPATH": str(target)}
    version = subprocess.run(
        [str(command), "--version"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert version.returncode == 0
    assert version.stdout.strip() == f"bayes-alliance {wheel.name.split('-')[1]}"
    argv = ["fit", "--spec", "cross_lagged", "--data", "mine.csv", "--out", "results"]
    run = subprocess.run(
        [str(command), *argv], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    # The spec was found (a missing spec is reported first); the missing data file is next.
    assert run.returncode == 2
    assert run.stderr.strip() == "error: cannot read 'mine.csv' as CSV: no such file"
    assert not (elsewhere / "results").exists()
