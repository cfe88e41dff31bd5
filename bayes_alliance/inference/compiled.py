"""Compile once, fit many: a model compiled for one data layout, refitted to new data sets.

Compilation (PyTensor graph rewriting and Numba code generation) costs more than sampling for
data of ordinary size, and simulation studies refit the same model structure hundreds of times.
The compiled code is also kept on disk (:mod:`bayes_alliance.inference.cache`), so a later process with
the same model structure loads it instead of compiling.
With integrated traits (the default) every data-dependent array of the model, including the data
location and scale behind the default priors, is a ``pm.Data`` container, so a new data set of
the same layout (same parameter shapes) is swapped into the compiled sampler without
recompiling. A refit equals a fresh fit of the new data with the same seed.

Example
-------
>>> cm = compile_model(first_data, ModelSpec())                     # doctest: +SKIP
>>> results = [cm.fit(d, random_seed=i) for i, d in enumerate(datasets)]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr
from pytensor.compile.sharedvalue import SharedVariable

from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference import cache, display, predictive, sampling
from bayes_alliance.inference.fit import (
    FitResult,
    compile_settings,
    complete_posterior,
    convergence_of,
    data_provenance,
    record_identification,
    states_wanted,
)
from bayes_alliance.inference.unit_group import move_unit_draws
from bayes_alliance.model.build import build_model
from bayes_alliance.model.covariates import resolve
from bayes_alliance.spec.model_spec import ModelSpec


class LayoutError(ValueError):
    """New data do not fit the compiled model's parameter layout."""


def _layout(model: pm.Model) -> dict[str, Any]:
    """What a compiled model is fixed to: parameter shapes and the likelihood's data containers
    (which form the likelihood takes)."""
    point = model.initial_point()
    out: dict[str, Any] = {name: np.shape(val) for name, val in point.items()}
    for name, var in model.named_vars.items():
        if isinstance(var, SharedVariable):
            out[f"data {name}"] = "container"
    return out


def _containers(model: pm.Model) -> dict[str, np.ndarray]:
    return {
        name: np.asarray(var.get_value())
        for name, var in model.named_vars.items()
        if isinstance(var, SharedVariable)
    }


def layout_differences(
    old: dict[str, Any], new: dict[str, Any], skip: tuple[str, ...] = ()
) -> list[str]:
    """The entries of two layouts that differ, each ``key: compiled OLD, new NEW``, sorted
    (keys in ``skip`` left out)."""
    return sorted(
        f"{k}: compiled {old.get(k)}, new {new.get(k)}"
        for k in set(old) | set(new)
        if k not in skip and old.get(k) != new.get(k)
    )


def bind_data(model: pm.Model, compiled: Any, new: pm.Model) -> Any:
    """nutpie's sampler of ``compiled`` (made from ``model``) with the data containers of
    ``new``, a model of the same layout, bound: no recompiling."""
    values = _containers(new)
    # The model's own containers feed nutpie's initial-point function; the compiled logp
    # function gets its own copies through with_data.
    with model:
        pm.set_data(values)
    known = {var.name for var in compiled.shared_var_keys}
    return compiled.with_data(**{k: v for k, v in values.items() if k in known})


@dataclass
class CompiledModel:
    """A trait/state model compiled with nutpie for one parameter layout.

    Create it with :func:`compile_model`. Attributes: ``spec``, ``model`` (the ``pm.Model``),
    ``compiled`` (nutpie's compiled model), ``compile_s`` (seconds spent compiling).
    """

    spec: ModelSpec
    model: pm.Model
    compiled: Any = field(repr=False)
    compile_s: float
    layout: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        return display.compiled_text(self)

    def _repr_html_(self) -> str:
        return display.compiled_html(self)

    def check(self, data: SessionData) -> pm.Model:
        """Build the model for ``data`` and check it has this layout; returns the new model."""
        new = build_model(data, self.spec)
        layout = _layout(new)
        if layout != self.layout:
            diff = layout_differences(self.layout, layout)
            raise LayoutError(
                "the data do not fit the compiled model's parameters (" + "; ".join(diff) + "). "
                "Refitting without recompiling needs the same form of the data (complete series, "
                "or series with missing cells), the same "
                "number of therapists with therapist slopes, of patients with patient slopes or "
                "trends, of sessions with session means, of censored cells (scores at a ceiling "
                "or floor: one parameter each); compile a model for this layout instead."
            )
        return new

    def fit(
        self,
        data: SessionData,
        *,
        random_seed: int | None = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        cores: int | None = None,
        complete: bool = True,
        log_likelihood: bool = False,
        progressbar: bool = False,
    ) -> FitResult:
        """Sample the compiled model on ``data`` without recompiling.

        Parameters
        ----------
        data
            Data with the compiled layout (see :meth:`check`).
        random_seed, draws, tune, chains, cores
            As in :func:`bayes_alliance.inference.fit.fit`.
        complete
            Draw the latent means and the states after sampling (as :func:`~bayes_alliance.inference.fit.fit`
            does). Without it the posterior holds the model's parameters only, which is all a
            simulation study of the named effects needs, and each refit is faster.
        log_likelihood
            Also store the pointwise log-likelihood (needs ``complete``).
        """
        if log_likelihood and not complete:
            raise ValueError("log_likelihood needs complete=True")
        settings = sampling.SamplerRun(draws, tune, chains, cores, "nutpie", progressbar)
        new = self.check(data)
        sampler = bind_data(self.model, self.compiled, new)
        adds: dict[str, Any] = data_provenance(data)
        posthoc = None
        if complete:
            keep_states = states_wanted(data, chains, draws, None)
            adds["states"] = keep_states

            def posthoc(idata: xr.DataTree, seed: int) -> xr.DataTree:
                idata = complete_posterior(
                    idata, data, self.spec, seed, log_likelihood, states=keep_states
                )
                return predictive.add_groups(idata, data, self.spec, seed, keep_states)

        run = sampling.sample(
            new,
            self.spec,
            settings,
            random_seed,
            data_hash=data.data_hash,
            check=lambda idata: convergence_of(idata, self.spec, data),
            adds=adds,
            posthoc=posthoc,
            compiled=sampler,
        )
        record_identification(run, data, self.spec)
        idata = run.idata
        if not complete:  # the post-hoc step moves them otherwise: parameters only in posterior
            idata = move_unit_draws(idata, self.spec.free_parameters())
        return FitResult(idata, self.spec, data, run.provenance, run.convergence)


def compile_model(data: SessionData, spec: ModelSpec | None = None) -> CompiledModel:
    """Compile the model for the layout of ``data`` (integrated traits only).

    Parameters
    ----------
    data
        Any data set with the layout of those to be fitted (its values do not matter).
    spec
        Model options; ``spec.traits`` must be ``"integrated"``.
    """
    spec = spec or ModelSpec(therapist_level=data.therapists is not None)
    spec = resolve(data, spec)  # the compiled layout has one baseline level
    if spec.traits != "integrated":
        raise ValueError("refitting without recompiling needs traits='integrated'")
    if spec.predictor_indicators or spec.outcome_indicators:
        raise ValueError(
            "refitting without recompiling does not support indicators yet (their values are "
            "part of the compiled graph): fit each data set with bayes_alliance.fit"
        )
    model = build_model(data, spec)
    t0 = time.perf_counter()
    # Through the on-disk cache: compiled once per machine and model structure.
    with compile_settings():
        compiled, _ = cache.compile_pymc_model(model, spec)
    return CompiledModel(spec, model, compiled, time.perf_counter() - t0, _layout(model))


__all__ = ["CompiledModel", "LayoutError", "compile_model"]
