"""The package's layout: old module paths of the flat layout still import (with a warning that
names the new path), and nothing in the package itself uses them."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from bayes_alliance import compat


def test_every_old_path_points_at_a_module_that_exists():
    for new in [*compat.MOVED.values(), *compat.PACKAGES.values()]:
        importlib.import_module(f"bayes_alliance.{new}")
    for target in compat.RENAMED.values():
        module, _, name = target.partition(":")
        assert hasattr(importlib.import_module(f"bayes_alliance.{module}"), name), target


@pytest.mark.parametrize("old", ["fit", "io", "vocab", "posthoc", "table_labels"])
def test_an_old_module_path_is_the_new_module_with_a_warning(old):
    sys.modules.pop(f"bayes_alliance.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"bayes_alliance.{old} moved to"):
        module = importlib.import_module(f"bayes_alliance.{old}")
    new = importlib.import_module(f"bayes_alliance.{compat.MOVED[old]}")
    public = [n for n in dir(new) if not n.startswith("_")]
    assert public and all(getattr(module, n) is getattr(new, n) for n in public)


def test_an_old_module_path_passes_writes_through_and_knows_renamed_names():
    import bayes_alliance.sim.settings as settings

    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("bayes_alliance.simulation")
    with pytest.warns(DeprecationWarning, match="simulation.Design moved to .*SimulationDesign"):
        assert old.Design is settings.SimulationDesign
    new = importlib.import_module("bayes_alliance.sim.sessions")
    try:
        old.marker_for_the_test = 1  # e.g. a test's monkeypatch of the old path
        assert new.marker_for_the_test == 1
    finally:
        del new.marker_for_the_test


def test_an_old_name_of_a_module_that_is_now_a_subpackage_warns_and_resolves():
    import bayes_alliance.model as model

    model.__dict__.pop("build_model", None)
    with pytest.warns(DeprecationWarning, match="bayes_alliance.model.build.build_model"):
        from bayes_alliance.model import build_model
    from bayes_alliance.model.build import build_model as new

    assert build_model is new
    with pytest.raises(ImportError, match="no_such_name"):
        from bayes_alliance.model import no_such_name  # noqa: F401


def test_submodules_of_a_subpackage_import_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from bayes_alliance.model import within

    assert within.__name__ == "bayes_alliance.model.within"


def test_the_package_imports_none_of_the_old_paths():
    # A fresh interpreter imports every module with the old paths' warning as an error.
    code = (
        "import pkgutil, importlib, warnings\n"
        "warnings.filterwarnings('error', message='.* moved to ', category=DeprecationWarning)\n"
        "import bayes_alliance\n"
        "for m in pkgutil.walk_packages(bayes_alliance.__path__, 'bayes_alliance.'):\n"
        "    if m.name.endswith('__main__'):\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module(m.name)\n"
        "    except ModuleNotFoundError as e:\n"
        # a module of an optional extra (the JAX filter) without that extra installed
        "        if m.name != 'bayes_alliance.kernels.kalman_jax' or e.name != 'jax':\n"
        "            raise\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
