"""The draws do not depend on PyTensor's compile cache: a fit on a machine whose compile directory
is empty (every kernel compiled afresh) gives the same draws, bit for bit, as the same fit once
the directory holds the compiled kernels (see :func:`bayes_alliance.inference.fit.compile_settings`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bayes_alliance

# One tiny fit in a fresh interpreter; the posterior goes to an .npz file.
_FIT = """
import sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.fit import fit

df, _ = simulate(seed=3, n_therapists=6, patients_per_therapist=(3, 4), sessions=6,
                 p_missing_value=0.1)  # gaps: the Kalman filter kernels too
data = SessionData.from_frame(df, **EXAMPLE_ROLES)
r = fit(data, draws=30, tune=30, chains=1, random_seed=11, progressbar=False,
        log_likelihood=False)
post = r.idata.posterior
np.savez(sys.argv[1], **{k: post[k].values for k in post.data_vars})
"""


def _fit_in_subprocess(base_compiledir: Path, out: Path) -> dict[str, np.ndarray]:
    env = dict(os.environ)
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",") if f and "compiledir" not in f]
    env["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={base_compiledir}"])
    # our own cache of compiled models (bayes_alliance.inference.cache) starts empty with it
    env["BAYES_ALLIANCE_CACHE_DIR"] = str(base_compiledir / "bayes_alliance")
    # and Numba's own cache of cache=True kernels (the Kalman filter's)
    env["NUMBA_CACHE_DIR"] = str(base_compiledir / "numba_functions")
    root = str(Path(bayes_alliance.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    subprocess.run(
        [sys.executable, "-c", _FIT, str(out)],
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    with np.load(out) as npz:
        return {k: npz[k] for k in npz.files}


def _cached_kernels(base_compiledir: Path) -> set[str]:
    return {p.name for p in (base_compiledir / "numba").glob("*.nbc")}


@pytest.mark.slow
def test_cold_and_warm_compile_cache_give_identical_draws(tmp_path):
    cache = tmp_path / "pytensor"
    cache.mkdir()
    cold = _fit_in_subprocess(cache, tmp_path / "cold.npz")
    filled = _cached_kernels(cache)
    assert filled, "the first fit cached no compiled kernels; the test would compare nothing"
    warm = _fit_in_subprocess(cache, tmp_path / "warm.npz")
    # The second fit loaded every kernel from the cache: it compiled nothing new.
    assert _cached_kernels(cache) == filled
    assert cold.keys() == warm.keys()
    differ = [k for k in cold if not np.array_equal(cold[k], warm[k], equal_nan=True)]
    assert not differ, f"cold and warm compile caches gave different draws of {differ}"
