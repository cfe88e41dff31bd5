"""The warm path of the compile cache (:mod:`bayes_alliance.inference.warm`): a fit of the same
data and spec in a later process samples from the cache without importing PyMC or PyTensor,
with the draws of the fit that wrote the entry; anything that could change the model (source,
spec, data, library versions) changes the pre-key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference import cache, sampling, warm
from bayes_alliance.spec.model_spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(n_therapists=4, patients_per_therapist=4, sessions=6)
FIT = dict(draws=30, tune=30, chains=2, cores=1, random_seed=7, progressbar=False)


def _data(seed: int = 1) -> SessionData:
    df, _ = simulate(seed=seed, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(df, **EXAMPLE_ROLES)


# A later process: the same fit, reporting what it imported and its timing.
_WARM = """
import json, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from tests.test_warm_cache import FIT, _data
from bayes_alliance.inference.fit import fit
r = fit(_data(), **FIT)
post = r.idata.posterior
np.savez(sys.argv[1], **{k: post[k].values for k in post.data_vars})
np.save(sys.argv[1] + ".patient.npy", r.idata["log_likelihood"]["patient"].values)
print(json.dumps({"pymc": "pymc" in sys.modules, "pytensor": "pytensor" in sys.modules,
                  "timing": r.provenance["timing"]}))
"""


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """A fit through an empty cache in this process: (folder, its posterior, its patients'
    log-likelihood)."""
    from bayes_alliance.inference.fit import fit

    folder = tmp_path_factory.mktemp("warm-cache")
    old = os.environ.get(cache.ENV_VAR)
    os.environ[cache.ENV_VAR] = str(folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit(_data(), **FIT)
    finally:
        if old is None:
            del os.environ[cache.ENV_VAR]
        else:
            os.environ[cache.ENV_VAR] = old
    assert "warm_cache_hit" not in result.provenance["timing"]
    return folder, result.idata.posterior, result.idata["log_likelihood"]["patient"].values


def _later_process(folder: Path, out: Path) -> dict:
    env = {
        **os.environ,
        cache.ENV_VAR: str(folder),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _WARM, str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_warm_fit_imports_neither_pymc_nor_pytensor_and_gives_the_same_draws(cold, tmp_path):
    folder, posterior, patient_ll = cold
    assert list(folder.glob("warm-*.pkl")), "the cold fit wrote no warm entry"
    report = _later_process(folder, tmp_path / "warm.npz")
    assert report["timing"]["warm_cache_hit"] == 1.0
    assert not report["pymc"], "a fit from the warm cache imported PyMC"
    assert not report["pytensor"], "a fit from the warm cache imported PyTensor"
    with np.load(tmp_path / "warm.npz") as there:
        assert set(there.files) == set(posterior.data_vars)
        for name in there.files:
            np.testing.assert_array_equal(there[name], posterior[name].values, err_msg=name)
    # the per-patient log-likelihood (for arviz_stats.loo(idata, var_name="patient")) is
    # written without PyTensor, equal to the cold fit's
    warm_ll = np.load(str(tmp_path / "warm.npz") + ".patient.npy")
    np.testing.assert_array_equal(warm_ll, patient_ll)


def test_the_warm_initial_point_is_pymcs_for_other_seeds(cold):
    """The numpy initial point against PyMC's own jittered function at seeds the entry was not
    checked on."""
    from pymc.initial_point import make_initial_point_fn

    from bayes_alliance.model.build import build_model

    folder, *_ = cold
    data = _data()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cache.ENV_VAR, str(folder))
        found = warm.load(warm.pre_key(data, ModelSpec(therapist_level=True)))
    assert found is not None
    model = build_model(data, ModelSpec(therapist_level=True))
    pymc_fn = make_initial_point_fn(
        model=model,
        default_strategy="support_point",
        jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )
    names = found.compiled.shape_info[0][: len(model.free_RVs)]
    for seed in (5, 99, 2**40 + 3):
        want = pymc_fn(seed)
        flat = np.concatenate([np.ravel(want[n]) for n in names])
        np.testing.assert_array_equal(found.compiled.initial_point_func(seed), flat)


def test_a_missing_graph_entry_sends_the_fit_down_the_full_path(cold, tmp_path, monkeypatch):
    folder, *_ = cold
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    for p in copy.glob("*.pkl"):
        if not p.name.startswith("warm-"):
            p.unlink()
    monkeypatch.setenv(cache.ENV_VAR, str(copy))
    pre = warm.pre_key(_data(), ModelSpec(therapist_level=True))
    assert (copy / f"warm-{pre}.pkl").is_file()
    assert warm.load(pre) is None
    assert not (copy / f"warm-{pre}.pkl").exists(), "the unusable warm entry was kept"


def test_the_pre_key_follows_spec_data_and_versions(monkeypatch):
    data = _data()
    spec = ModelSpec(therapist_level=True)
    key = warm.pre_key(data, spec)
    assert warm.pre_key(_data(), ModelSpec(therapist_level=True)) == key
    assert warm.pre_key(data, ModelSpec(therapist_level=True, random_slopes=("patient",))) != key
    assert warm.pre_key(_data(seed=2), spec) != key
    # One value of one cell changed: a fit of other data never reads these data's entry.
    df, _ = simulate(seed=1, **SMALL)
    df.loc[3, "symptoms"] += 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nudged = SessionData.from_frame(df, **EXAMPLE_ROLES)
    assert warm.pre_key(nudged, spec) != key
    real = cache.library_versions
    monkeypatch.setattr(cache, "library_versions", lambda: {**real(), "pymc": "0.0.0"})
    assert warm.pre_key(data, spec) != key
    monkeypatch.undo()
    monkeypatch.setenv("PYTENSOR_FLAGS", "floatX=float32")
    assert warm.pre_key(data, spec) != key


_KEY = """
import warnings
warnings.simplefilter("ignore")
from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference import warm
from bayes_alliance.spec.model_spec import ModelSpec
df, _ = simulate(seed=1, n_therapists=4, patients_per_therapist=4, sessions=6)
print(warm.pre_key(SessionData.from_frame(df, **EXAMPLE_ROLES), ModelSpec(therapist_level=True)))
"""


def test_editing_the_model_code_changes_the_pre_key(tmp_path):
    """The package copied, one line of the model's builder edited: another pre-key, so a warm
    entry of the old code is never used."""

    def key_of(root: Path) -> str:
        env = {**os.environ, "PYTHONPATH": str(root)}
        proc = subprocess.run(
            [sys.executable, "-c", _KEY], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout.strip().splitlines()[-1]

    copy = tmp_path / "pkg"
    shutil.copytree(
        ROOT / "bayes_alliance", copy / "bayes_alliance", ignore=shutil.ignore_patterns("*.pyc")
    )
    before = key_of(copy)
    build = copy / "bayes_alliance" / "model" / "build.py"
    build.write_text(build.read_text() + "\n_EDITED = True\n")
    assert key_of(copy) != before


@pytest.mark.parametrize("seed", [0, 1, 7, 2**31 - 1])
def test_nutpie_seed_is_pymcs(seed):
    """The seed ``pm.sample`` hands nutpie, computed without PyMC."""
    from pymc.util import get_random_generator

    want = int(get_random_generator(seed).spawn(2)[0].integers(2**30))
    assert sampling.nutpie_seed(seed, 2) == want


def test_a_damaged_entry_in_a_folder_we_cannot_write_falls_back(tmp_path, monkeypatch):
    """An unreadable warm entry that cannot be removed (a shared or read-only cache folder)
    sends the fit down the full path instead of raising."""
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    (tmp_path / "warm-abc.pkl").write_bytes(b"not an entry")

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    assert warm.load("abc") is None
    assert (tmp_path / "warm-abc.pkl").exists()
