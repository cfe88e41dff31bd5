"""The one sampling entry of both model families: :func:`sample`.

:func:`bayes_alliance.inference.fit.fit`, :meth:`bayes_alliance.inference.compiled.CompiledModel.fit`
and :func:`bayes_alliance.mechanisms.fit.fit_mechanisms` hand it a built ``pm.Model``, its spec,
the sampler settings and a seed (or none: one is drawn and recorded). It samples (nutpie through
the on-disk model cache, a model compiled earlier, or PyMC's own NUTS for the joint model),
under :func:`compile_settings`, records the timing, runs the family's post-hoc step, builds the
provenance (seed, sampler settings, library versions, data hash, spec, timing and what the
family adds) and runs the family's convergence check, which warns at the caller of the
family's fit function when it fails.

Also here: the seeds (given or drawn), the seed nutpie gets, and the size rule for holding
every draw's states.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import xarray as xr

from bayes_alliance.core import diagnostics, quiet
from bayes_alliance.core.versions import library_versions
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference.progress import SamplingLog, duration, stage, timed_stage

if TYPE_CHECKING:
    import pymc as pm

    from bayes_alliance.inference.warm import Warm

STATES_AUTO_BYTES = 2**30
# JAX samplers (a GPU): PyMC's numpyro path with vectorised chains, nutpie's JAX backend.
JAX_SAMPLERS = ("numpyro", "nutpie-jax")
SAMPLERS = ("nutpie", "pymc", *JAX_SAMPLERS)


class Spec(Protocol):
    """What the sampler needs of a model's options: their plain-data form (cache key and
    provenance)."""

    def to_dict(self) -> dict[str, Any]: ...


@contextlib.contextmanager
def compile_settings() -> Iterator[None]:
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

    PyTensor's notices about a missing C BLAS library (a backend these models never use) are
    filtered inside the block (:mod:`bayes_alliance.core.quiet`).
    """
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=False), quiet.hidden():
        yield


def versions() -> dict[str, str]:
    """Python's and the main libraries' versions, for the provenance (the list the compiled
    model cache keys on too: :func:`bayes_alliance.core.versions.library_versions`)."""
    return library_versions()


def nutpie_seed(random_seed: int, chains: int) -> int:
    """The seed ``pm.sample(..., nuts_sampler="nutpie", random_seed=random_seed)`` hands nutpie.

    ``pm.sample`` makes ``np.random.default_rng(random_seed)`` (``pymc.util.get_random_generator``),
    draws one seed per spawned generator and gives nutpie the first; the same in numpy, so that
    a warm fit need not import PyMC."""
    return int(np.random.default_rng(random_seed).spawn(chains)[0].integers(2**30))


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


@dataclass(frozen=True)
class SamplerRun:
    """How to sample: draws and tuning steps per chain, chains, cores (default: up to 2),
    ``"nutpie"``, ``"pymc"`` or a JAX sampler (``"numpyro"``, ``"nutpie-jax"``: the ``jax``
    extra), and whether to show progress."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    cores: int | None = None
    sampler: str = "nutpie"
    progressbar: bool = True

    def __post_init__(self) -> None:
        if self.draws < 1 or self.tune < 0 or self.chains < 1:
            raise ValueError(
                "draws and chains must be positive and tune non-negative, got "
                f"{self.draws}, {self.tune}, {self.chains}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(
                "sampler must be 'nutpie' or 'pymc' (or through JAX: 'numpyro', 'nutpie-jax'), "
                f"got {self.sampler!r}"
            )

    @property
    def n_cores(self) -> int:
        return self.cores or min(self.chains, 2)

    def recorded(self) -> dict[str, Any]:
        """The settings as the provenance records them."""
        return {
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
            "sampler": self.sampler,
        }


@dataclass
class Sampled:
    """What :func:`sample` returns: the DataTree (after the post-hoc step), the provenance and
    the convergence check."""

    idata: xr.DataTree
    provenance: dict[str, Any]
    convergence: diagnostics.Convergence


def sample(
    model: pm.Model | None,
    spec: Spec,
    settings: SamplerRun,
    random_seed: int | None,
    *,
    data_hash: str,
    check: Callable[[xr.DataTree], diagnostics.Convergence],
    adds: Mapping[str, Any] | None = None,
    posthoc: Callable[[xr.DataTree, int], xr.DataTree] | None = None,
    compiled: Any | None = None,
    bound: Any | None = None,
    warm: Warm | None = None,
    pre_key: str | None = None,
) -> Sampled:
    """Sample a built model, complete it, record how, and check convergence.

    Parameters
    ----------
    model
        The ``pm.Model`` (for a model compiled earlier: the model built for these data, whose
        coords name the draws' dimensions).
    spec
        The model's options (part of the cache key and of the provenance).
    settings
        Draws, tuning steps, chains, cores, sampler, progress bar.
    random_seed
        The same seed, model and data give the same draws; without one a seed is drawn and
        recorded (``seed_drawn``).
    data_hash
        The data's fingerprint, recorded.
    check
        The family's convergence check on its parameter list; a failed check warns with
        :class:`~bayes_alliance.core.diagnostics.ConvergenceWarning`.
    adds
        What the family adds to the provenance (roles, series, post-hoc settings).
    posthoc
        ``posthoc(idata, seed)``: the family's step after sampling (timed as ``posthoc_s``).
    compiled
        A nutpie model compiled earlier with these data bound (``with_data``): sampled as is,
        with the seed itself as nutpie's seed (as compiled refits always were), not through the
        cache.
    bound
        A nutpie model compiled earlier for this model's graph (through the cache) with these
        data bound (``with_data``): sampled exactly as the cache's model would be (the same
        seed rule, groups and coords), so the draws equal those of a fresh fit.
    warm
        A model rebuilt from a warm entry (:mod:`bayes_alliance.inference.warm`): sampled as
        the cache's model would be, without PyMC (``model`` may then be None).
    pre_key
        The warm key of these data and spec: after sampling through the cache, a warm entry
        is written under it (when there is none).

    Returns
    -------
    Sampled
        DataTree, provenance and convergence check.
    """
    seed, drawn = resolve_seed(random_seed)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()

    # Nothing is compiled on the warm path: no PyTensor settings to set.
    with compile_settings() if warm is None else contextlib.nullcontext():
        if warm is not None:
            idata = _nutpie_warm(warm, settings, seed, timing)
        elif compiled is not None:
            assert model is not None
            idata = _nutpie_compiled(compiled, model, settings, seed, timing)
        elif settings.sampler == "nutpie":
            assert model is not None
            idata = _nutpie_cached(model, spec, settings, seed, timing, bound, pre_key)
        elif settings.sampler in JAX_SAMPLERS:
            assert model is not None
            idata = _jax(model, settings, seed, timing)
        else:
            assert model is not None
            idata = _pymc(model, settings, seed, timing)
    stage("sampling: done in %s", duration(timing.get("sample_s", time.perf_counter() - t0)))
    if posthoc is not None:
        t1 = time.perf_counter()
        with timed_stage("post-hoc draws (latent parts, states, log-likelihood)"):
            idata = posthoc(idata, seed)
        timing["posthoc_s"] = time.perf_counter() - t1
    timing["total_s"] = time.perf_counter() - t0
    provenance = {
        "random_seed": seed,
        "seed_drawn": drawn,
        **settings.recorded(),
        "versions": versions(),
        "data_hash": data_hash,
        "spec": spec.to_dict(),
        **(adds or {}),
        "timing": timing,
    }
    conv = check(idata)
    if not conv.ok:
        # At the caller of fit, CompiledModel.fit or fit_mechanisms (which call this directly).
        warnings.warn(conv.message(), diagnostics.ConvergenceWarning, stacklevel=3)
    return Sampled(idata, provenance, conv)


def _announce(settings: SamplerRun) -> None:
    """The stage line before sampling starts (after any compilation)."""
    stage(
        "sampling with %s: %d chains x (%d warm-up + %d draws) on %d cores",
        settings.sampler,
        settings.chains,
        settings.tune,
        settings.draws,
        settings.n_cores,
    )


def _nutpie_run(
    compiled: Any, settings: SamplerRun, seed: int, timing: dict[str, float]
) -> xr.DataTree:
    """The one nutpie call of a fresh and of a warm model: the stage line, then the sampler
    with the run's settings (its time in ``timing["sample_s"]``)."""
    import nutpie

    _announce(settings)
    t0 = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=max(settings.tune, 1),  # as pm.sample: nuts-rs needs at least one tuning step
        chains=settings.chains,
        cores=settings.n_cores,
        seed=nutpie_seed(seed, settings.chains),
        save_warmup=False,
        store_unconstrained=False,
        progress_bar=settings.progressbar,
        progress_callback=SamplingLog(),
    )
    timing["sample_s"] = time.perf_counter() - t0
    return idata


def _nutpie_cached(
    model: pm.Model,
    spec: Spec,
    settings: SamplerRun,
    seed: int,
    timing: dict[str, float],
    bound: Any | None = None,
    pre_key: str | None = None,
) -> xr.DataTree:
    """What ``pm.sample(nuts_sampler="nutpie")`` does, with the compiled model taken from the
    on-disk cache (:mod:`bayes_alliance.inference.cache`), or ``bound`` (see :func:`sample`):
    same seed, same groups, same draws. With ``pre_key`` the warm entry of these data is
    written afterwards (:func:`bayes_alliance.inference.warm.record`)."""
    from pymc.backends.arviz import patch_nutpie_idata

    from bayes_alliance.inference import cache

    info = None
    if bound is None:
        stage("compiling the model, or taking it from the compile cache ...")
        compiled, info = cache.compile_pymc_model(model, spec)
        timing["compile_s"] = info.seconds
        timing["compile_cache_hit"] = float(info.status == "hit")
        how = "taken from the compile cache" if info.status == "hit" else "compiled"
        stage("model %s in %s", how, duration(info.seconds))
    else:
        compiled = bound
        timing["compile_s"] = 0.0
    idata = _nutpie_run(compiled, settings, seed, timing)
    patch_nutpie_idata(idata, model, sampling_time=timing["sample_s"])
    if pre_key is not None and info is not None and info.status in ("hit", "stored"):
        from bayes_alliance.inference import warm

        t1 = time.perf_counter()
        reason = warm.record(pre_key, model, compiled, info, idata)
        timing["warm_record_s"] = time.perf_counter() - t1
        if reason is not None:
            warnings.warn(f"no warm cache entry: {reason}", RuntimeWarning, stacklevel=2)
    return idata


def _nutpie_warm(
    warm_model: Warm, settings: SamplerRun, seed: int, timing: dict[str, float]
) -> xr.DataTree:
    """:func:`_nutpie_cached` on a model rebuilt from a warm entry: the same sampler call and
    the same groups, without PyMC."""

    from bayes_alliance.inference import warm

    timing["compile_s"] = warm_model.seconds
    stage("model taken from the warm cache in %s (not built again)", duration(warm_model.seconds))
    timing["compile_cache_hit"] = 1.0
    timing["warm_cache_hit"] = 1.0
    idata = _nutpie_run(warm_model.compiled, settings, seed, timing)
    warm.patch(idata, warm_model, timing["sample_s"])
    return idata


def _nutpie_compiled(
    compiled: Any,
    model: pm.Model,
    settings: SamplerRun,
    seed: int,
    timing: dict[str, float],
) -> xr.DataTree:
    """A model compiled earlier, with new data bound: posterior (with the model's coords) and
    sampler statistics."""
    import nutpie

    _announce(settings)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        trace = nutpie.sample(
            compiled,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=settings.n_cores,
            seed=seed,
            progress_bar=settings.progressbar,
            progress_callback=SamplingLog(),
        )
    timing["compile_s"] = 0.0
    timing["sample_s"] = time.perf_counter() - t0
    post = trace.posterior.to_dataset()
    post = post.assign_coords(
        {k: np.asarray(val) for k, val in model.coords.items() if k in post.dims}
    )
    return xr.DataTree(
        children={
            "posterior": xr.DataTree(post),
            "sample_stats": xr.DataTree(trace.sample_stats.to_dataset()),
        }
    )


def _pm_sample(
    model: pm.Model, settings: SamplerRun, seed: int, timing: dict[str, float], **how: Any
) -> xr.DataTree:
    """The one ``pm.sample`` call of the PyMC and the JAX samplers: the stage line, then the
    run's settings and ``how`` (the sampler and its options); its time in
    ``timing["sample_s"]``. PyMC is imported here, not with the module (a warm fit needs none)."""
    import pymc as pm

    _announce(settings)
    t0 = time.perf_counter()
    idata = pm.sample(
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        random_seed=seed,
        model=model,
        progressbar=settings.progressbar,
        compute_convergence_checks=False,
        **how,
    )
    timing["sample_s"] = time.perf_counter() - t0
    return idata


def _pymc(
    model: pm.Model, settings: SamplerRun, seed: int, timing: dict[str, float]
) -> xr.DataTree:
    """PyMC's own NUTS (``sampler="pymc"``, joint model only)."""
    return _pm_sample(model, settings, seed, timing, cores=settings.n_cores, nuts_sampler="pymc")


def _jax(model: pm.Model, settings: SamplerRun, seed: int, timing: dict[str, float]) -> xr.DataTree:
    """The joint model through PyTensor's JAX backend: ``"numpyro"`` (the whole sampling loop
    one XLA program, chains vectorised; JIT time is inside ``sample_s``) or ``"nutpie-jax"``
    (nutpie calling JAX functions). Imports JAX only here, with the JAX functions of the Kalman
    filter Op (:mod:`bayes_alliance.kernels.kalman_jax`) and of PyMC's own Ops."""
    try:
        import pymc.sampling.jax  # noqa: F401  (JAX functions of PyMC's parameter checks)

        import bayes_alliance.kernels.kalman_jax  # noqa: F401  (the Kalman filter Op's)
    except ImportError as err:
        raise ImportError(
            f"sampler {settings.sampler!r} needs JAX: pip install 'bayes_alliance[jax]' ({err})"
        ) from err
    if settings.sampler == "numpyro":
        how: dict[str, Any] = {
            "nuts_sampler": "numpyro",
            "nuts_sampler_kwargs": {"chain_method": "vectorized"},
        }
    else:
        how = {
            "nuts_sampler": "nutpie",
            "compile_kwargs": {"mode": "JAX", "gradient_backend": "jax"},
        }
    return _pm_sample(model, settings, seed, timing, **how)


__all__ = [
    "JAX_SAMPLERS",
    "SAMPLERS",
    "STATES_AUTO_BYTES",
    "Sampled",
    "SamplerRun",
    "compile_settings",
    "nutpie_seed",
    "resolve_seed",
    "sample",
    "states_wanted",
    "versions",
]
