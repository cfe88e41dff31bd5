"""On-disk cache of compiled models: keyed by structure, loaded by later processes with the same
draws, and corrupt or stale entries rebuilt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference import cache
from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec

SMALL = dict(n_therapists=6, patients_per_therapist=4, sessions=6)
SAMPLE = dict(draws=60, tune=60, chains=2, cores=1, seed=5, progress_bar=False)


def _data(seed: int, **settings) -> SessionData:
    df, _ = simulate(seed=seed, **{**SMALL, **settings})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(df, **EXAMPLE_ROLES)


def _draws(compiled) -> dict[str, np.ndarray]:
    import nutpie

    post = nutpie.sample(compiled, **SAMPLE).posterior
    return {k: post[k].values for k in ("state_effect", "sd_patient_outcome", "innovation_corr")}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("compiled-cache")


@pytest.fixture(scope="module")
def stored(folder):
    """One small model compiled through an empty cache: (model, loaded, info, nutpie's own)."""
    import nutpie

    real = nutpie.compile_pymc_model
    fresh = []
    old = os.environ.get(cache.ENV_VAR)
    os.environ[cache.ENV_VAR] = str(folder)
    nutpie.compile_pymc_model = lambda m, **kw: fresh.append(real(m, **kw)) or fresh[-1]
    try:
        model = build_model(_data(1), ModelSpec())
        compiled, info = cache.compile_pymc_model(model, ModelSpec())
    finally:
        nutpie.compile_pymc_model = real
        if old is None:
            del os.environ[cache.ENV_VAR]
        else:
            os.environ[cache.ENV_VAR] = old
    assert len(fresh) == 1
    return model, compiled, info, fresh[0]


@pytest.fixture
def use(folder, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(folder))
    return folder


def test_location_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    for off in ("off", "0", ""):
        monkeypatch.setenv(cache.ENV_VAR, off)
        assert cache.cache_dir() is None
    monkeypatch.delenv(cache.ENV_VAR)
    assert cache.cache_dir().name == "compiled"


def test_key_follows_structure_not_data_values():
    spec = ModelSpec()
    key = cache.model_key(build_model(_data(1), spec), spec)
    # Other data of the same layout: the same compiled code serves them.
    assert cache.model_key(build_model(_data(2), spec), spec) == key
    # Another model structure, or another spec: another entry.
    assert cache.model_key(build_model(_data(1), ModelSpec(reverse_lag=False)), spec) != key
    assert cache.model_key(build_model(_data(1), spec), ModelSpec(reverse_lag=False)) != key
    # Missing cells are integrated out (a Kalman filter): data with other gaps share one entry,
    # which differs from that of complete series (another likelihood).
    one = build_model(_data(1, p_missing_value=0.05), spec)
    two = build_model(_data(2, p_missing_value=0.1), spec)
    assert cache.model_key(one, spec) == cache.model_key(two, spec) != key
    # Another layout: patient slopes have one parameter per patient; the graph is the same
    # (dimension lengths are symbolic), the key is not.
    slopes = ModelSpec(random_slopes=("patient",))
    three = build_model(_data(1), slopes)
    four = build_model(_data(1, patients_per_therapist=5), slopes)
    assert cache.graph_fingerprint(three) == cache.graph_fingerprint(four)
    assert cache.layout(three) != cache.layout(four)
    assert cache.model_key(three, slopes) != cache.model_key(four, slopes)


def test_key_and_provenance_read_one_version_list(monkeypatch):
    from bayes_alliance.core import versions
    from bayes_alliance.inference import sampling

    spec = ModelSpec()
    model = build_model(_data(1), spec)
    key = cache.model_key(model, spec)
    assert sampling.versions() == versions.library_versions()
    assert {"pytensor", "pymc", "nutpie", "numba", "llvmlite", "numpy"} <= set(versions.LIBRARIES)
    # A library added to the list is recorded in the provenance and moves the cache key.
    monkeypatch.setattr(versions, "LIBRARIES", (*versions.LIBRARIES, "no-such-library"))
    assert sampling.versions()["no-such-library"] == "not installed"
    assert cache.model_key(model, spec) != key


def test_a_miss_compiles_and_stores_atomically(stored, folder):
    _, _, info, _ = stored
    assert info.status == "stored"
    assert info.path is not None and info.path.parent == folder and info.path.is_file()
    assert [p.name for p in folder.iterdir()] == [info.path.name]  # no temporary files left


def test_a_hit_in_a_new_process_gives_bit_identical_draws(stored, use, tmp_path):
    """A later process loads the entry instead of compiling, and samples the same draws as the
    process that compiled it."""
    _, compiled, _, _ = stored
    here = _draws(compiled)
    out = tmp_path / "draws.npz"
    script = f"""
import json, warnings, numpy as np
warnings.simplefilter("ignore")
import tests.test_cache as t
from bayes_alliance.inference import cache
from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec
model = build_model(t._data(1), ModelSpec())
compiled, info = cache.compile_pymc_model(model, ModelSpec())
np.savez({str(out)!r}, **t._draws(compiled))
print(json.dumps({{"status": info.status, "seconds": info.seconds}}))
"""
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == "hit"
    there = np.load(out)
    for name, values in here.items():
        np.testing.assert_array_equal(there[name], values)


def test_the_same_structure_in_this_process_reuses_the_loaded_code(stored, use):
    _, compiled, _, _ = stored
    again, info = cache.compile_pymc_model(build_model(_data(1), ModelSpec()), ModelSpec())
    assert info.status == "hit"
    assert again.compiled_logp_func is compiled.compiled_logp_func
    a, b = _draws(compiled), _draws(again)
    for name, values in a.items():
        np.testing.assert_array_equal(b[name], values)


def test_other_data_of_the_same_layout_are_bound_afresh(stored, use):
    _, compiled, _, _ = stored
    other, info = cache.compile_pymc_model(build_model(_data(2), ModelSpec()), ModelSpec())
    assert info.status == "hit"
    a, b = _draws(compiled), _draws(other)
    assert not np.array_equal(a["state_effect"], b["state_effect"])


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated
        lambda raw: raw[:-10] + b"0123456789",  # corrupted (checksum)
        lambda raw: b"not a cache entry",
    ],
)
def test_a_corrupt_entry_is_ignored_and_rebuilt(stored, use, monkeypatch, damage):
    import nutpie

    model, compiled, info, fresh = stored
    key = info.path.stem
    info.path.write_bytes(damage(info.path.read_bytes()))
    cache.LOADED.clear()
    # Rebuilding compiles: hand back nutpie's model compiled before instead of waiting again.
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda m, **kw: fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rebuilt, again = cache.compile_pymc_model(model, ModelSpec())
    assert again.status == "stored" and "ignored entry" in again.reason
    assert cache.read_entry(info.path, key)["key"] == key
    a, b = _draws(compiled), _draws(rebuilt)
    for name, values in a.items():
        np.testing.assert_array_equal(b[name], values)


def test_an_entry_for_another_key_is_not_used(stored, use, monkeypatch):
    _, _, info, _ = stored
    key = info.path.stem
    entry = cache.read_entry(info.path, key)
    other = info.path.with_name("0" * 64 + ".pkl")
    cache.write_entry(other, entry)  # right content, wrong name: its key does not match
    with pytest.raises(cache.CacheEntryError, match="another format or model"):
        cache.read_entry(other, "0" * 64)
    other.unlink()
    cache.write_entry(info.path, {**entry, "format": cache.FORMAT + 1})
    with pytest.raises(cache.CacheEntryError):
        cache.read_entry(info.path, key)
    cache.write_entry(info.path, entry)
