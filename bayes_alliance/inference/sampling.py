"""Sampling mechanics shared by :func:`bayes_alliance.inference.fit.fit` and compiled refits: the compile
settings that make draws independent of caches, nutpie through the on-disk model cache, seeds
(given or drawn and recorded), library versions for the provenance, and the size rule for
holding every draw's states.
"""

from __future__ import annotations

import platform
import time
from importlib import metadata
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import xarray as xr

from bayes_alliance.data.session_data import SessionData

_LIBRARIES = (
    "bayes_alliance",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz-base",
    "arviz-stats",
    "numpy",
    "pandas",
    "xarray",
)


def compile_settings() -> Any:
    """Context manager with the PyTensor settings every model of this package is compiled under:
    Numba fast-math off, so the draws do not depend on PyTensor's compile cache.

    With fast-math (PyTensor's default) LLVM may reassociate and fuse floating-point operations
    (``reassoc``, ``contract``: multiply-adds become FMAs) wherever it sees fit, so the same
    scalar kernel can compile to different arithmetic in different contexts. PyTensor caches
    compiled kernels on disk (``<base_compiledir>/numba``). On the first run of a machine each
    kernel is compiled on its own and the compiled logp graph calls those copies; a later run
    loads the graph from the cache with its own copies of the kernels, optimised again inside
    the graph, and some of them contract differently. The logp and gradient then differed in the
    last bits (1e-13), and so did every draw after the first step. Without fast-math every LLVM
    rewrite keeps IEEE results, and cold and warm runs give the same draws bit for bit. The
    flag is part of PyTensor's cache key, so kernels cached with fast-math are not reused.
    """
    return pytensor.config.change_flags(numba__fastmath=False)


def versions() -> dict[str, str]:
    """Python's and the main libraries' versions, for the provenance."""
    out = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def nutpie_seed(random_seed: int, chains: int) -> int:
    """The seed ``pm.sample(..., nuts_sampler="nutpie", random_seed=random_seed)`` hands nutpie."""
    from pymc.util import get_random_generator

    # pm.sample draws one seed per spawned generator and gives nutpie the first.
    return int(get_random_generator(random_seed).spawn(chains)[0].integers(2**30))


def _sample_nutpie(
    model: pm.Model,
    spec: Any,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    random_seed: int,
    progressbar: bool,
    timing: dict[str, float],
) -> xr.DataTree:
    """What ``pm.sample(nuts_sampler="nutpie")`` does, with the compiled model taken from the
    on-disk cache (:mod:`bayes_alliance.inference.cache`): same seed, same groups, same draws. ``spec``
    (a ``ModelSpec`` or a ``MechanismSpec``) is part of the cache key through its ``to_dict``."""
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    from bayes_alliance.inference import cache

    compiled, info = cache.compile_pymc_model(model, spec)
    timing["compile_s"] = info.seconds
    timing["compile_cache_hit"] = float(info.status == "hit")
    t0 = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        draws=draws,
        tune=max(tune, 1),  # as pm.sample: nuts-rs needs at least one tuning step
        chains=chains,
        cores=cores,
        seed=nutpie_seed(random_seed, chains),
        save_warmup=False,
        store_unconstrained=False,
        progress_bar=progressbar,
    )
    timing["sample_s"] = time.perf_counter() - t0
    patch_nutpie_idata(idata, model, sampling_time=timing["sample_s"])
    return idata


STATES_AUTO_BYTES = 2**30


def resolve_seed(random_seed: int | None) -> tuple[int, bool]:
    """The seed to use and whether it was drawn here (no seed given): a drawn seed comes from
    the operating system's entropy and is recorded in the provenance, so that the run can be
    repeated."""
    if random_seed is not None:
        return int(random_seed), False
    entropy = np.random.SeedSequence().entropy
    assert isinstance(entropy, int)
    return entropy % 2**31, True


def states_wanted(data: SessionData, chains: int, draws: int, states: bool | None) -> bool:
    """Whether the post-hoc step holds every draw's states: as asked, or by default while the
    two float64 grids stay under :data:`STATES_AUTO_BYTES` (at 20,000 patients x 20 sessions and
    2,000 draws they would take 12.8 GB)."""
    if states is not None:
        return bool(states)
    size = 2 * 8 * chains * draws * data.n_patients * data.n_sessions
    return size <= STATES_AUTO_BYTES
