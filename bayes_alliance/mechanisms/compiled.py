"""Compile a mechanism model once, refit it to many data sets: :func:`compile_mechanisms`.

The integrated mechanism model reads every number it takes from the data through ``pm.Data``
containers of fixed shape (:mod:`bayes_alliance.mechanisms.containers`): the Kalman filter's
masks, regressors and values, the session times, the end outcome, the caseloads, the
baseline's values and the prior scales taken from the series' means and SDs. A model compiled
for one data set therefore samples any data set of the same layout with the new values bound
(nutpie's ``with_data``), without compiling again, and runs the same compiled code a fresh
:func:`~bayes_alliance.mechanisms.fit.fit_mechanisms` of those data runs: with the same seed the
draws are the same.

The layout is what the compiled code is fixed to: the graph (the options: design, levels,
random lags, trend, end outcome, measurement error, baseline columns), the numbers of
patients, of grid sessions, of series and of therapists, and so the shapes of every parameter
and container. Which cells are missing, where each patient's series starts and ends, which
patients lack an end outcome and who treats whom are data and may differ. Data of another
layout are refused with :class:`~bayes_alliance.inference.compiled.LayoutError`, naming what
differs; compile a model for them instead. The sampled form (traits as parameters, needed for a
binary end outcome) has its missing cells as parameters and is refused.

Example
-------
>>> cm = compile_mechanisms(first, MechanismSpec())                        # doctest: +SKIP
>>> fits = [cm.fit(d, random_seed=i) for i, d in enumerate(datasets)]      # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pymc as pm
from pytensor.compile.sharedvalue import SharedVariable

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.inference import cache, sampling
from bayes_alliance.inference.compiled import LayoutError, bind_data, layout_differences
from bayes_alliance.mechanisms.fit import MechanismResult, convergence_of, mechanism_result
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.records import series_provenance
from bayes_alliance.mechanisms.spec import MechanismSpec

GRAPH = "graph"


def layout_of(model: pm.Model) -> dict[str, Any]:
    """What a compiled mechanism model is fixed to: the length of each dimension (patients,
    therapists, series, paths: with the graph they fix every parameter's shape), each data
    container's type (with its shape), and the fingerprint of the graph
    (:func:`bayes_alliance.inference.cache.graph_fingerprint`: the structure the compiled code
    was made from, with the containers' values left out). Nothing is compiled to read it."""
    out: dict[str, Any] = {f"dim {name}": len(val) for name, val in model.coords.items()}
    for name, var in model.named_vars.items():
        if isinstance(var, SharedVariable):
            out[f"data {name}"] = str(var.type)
    out[GRAPH] = cache.graph_fingerprint(model)
    return out


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The entries that differ, named (the graph's only when nothing else does)."""
    named = layout_differences(old, new, skip=(GRAPH,))
    if named:
        return "; ".join(named)
    return (
        "the model's structure differs (an option, or a number the model takes from the data "
        "that is not one of its data containers)"
    )


@dataclass
class CompiledMechanisms:
    """An integrated mechanism model compiled with nutpie for one layout.

    Create it with :func:`compile_mechanisms`. Attributes: ``spec`` (resolved), ``model``
    (the ``pm.Model`` it was compiled from), ``compiled`` (nutpie's model), ``compile_s``
    (seconds spent compiling, or loading from the on-disk cache) and ``layout``
    (:func:`layout_of`).
    """

    spec: MechanismSpec
    model: pm.Model
    compiled: Any = field(repr=False)
    compile_s: float
    layout: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        dims = ", ".join(f"{k[4:]} {v}" for k, v in self.layout.items() if k.startswith("dim "))
        return f"CompiledMechanisms({dims}; compiled in {self.compile_s:.1f} s)"

    def check(self, data: SeriesData) -> pm.Model:
        """Build the model of ``data`` and check that it has this layout; returns it.

        Raises
        ------
        LayoutError
            Naming each dimension or container whose size differs (or the graph).
        """
        new = build_mechanism_model(data, self.spec)
        layout = layout_of(new)
        if layout != self.layout:
            raise LayoutError(
                "the data do not fit the compiled mechanism model ("
                + _difference(self.layout, layout)
                + "). Refitting without recompiling needs the same numbers of patients, grid "
                "sessions, series and therapists and the same options (missing cells, series "
                "lengths, missing end outcomes and caseloads may differ); compile a model for "
                "these data with compile_mechanisms instead."
            )
        return new

    def fit(
        self,
        data: SeriesData,
        *,
        random_seed: int | None = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        cores: int | None = None,
        progressbar: bool = False,
    ) -> MechanismResult:
        """Sample the compiled model on ``data`` without recompiling.

        The result equals ``fit_mechanisms(data, spec, random_seed=..., ...)`` with the same
        settings: the same compiled code, data and seed.

        Parameters
        ----------
        data
            Series with the compiled layout (:meth:`check`).
        random_seed, draws, tune, chains, cores, progressbar
            As in :func:`~bayes_alliance.mechanisms.fit.fit_mechanisms`.
        """
        new = self.check(data)
        bound = bind_data(self.model, self.compiled, new)
        settings = sampling.SamplerRun(draws, tune, chains, cores, "nutpie", progressbar)
        run = sampling.sample(
            new,
            self.spec,
            settings,
            random_seed,
            data_hash=data.data_hash,
            check=convergence_of,
            adds=series_provenance(data),
            bound=bound,
        )
        return mechanism_result(run, data, self.spec)


def compile_mechanisms(data: SeriesData, spec: MechanismSpec | None = None) -> CompiledMechanisms:
    """Compile the integrated mechanism model for the layout of ``data``.

    Parameters
    ----------
    data
        Any data set with the layout of those to be fitted (its values do not matter).
    spec
        Options (default as in :func:`~bayes_alliance.mechanisms.fit.fit_mechanisms`); resolved
        on ``data``, and the traits must be integrated.
    """
    spec = (spec or MechanismSpec(therapist_level=data.patient_therapist is not None)).resolved(
        data
    )
    if spec.traits != "integrated":
        raise ValueError(
            "refitting a mechanism model without recompiling needs traits='integrated' (the "
            "sampled form, which a binary end outcome needs, has the missing cells as "
            "parameters): fit each data set with fit_mechanisms"
        )
    model = build_mechanism_model(data, spec)
    t0 = time.perf_counter()
    # Through the on-disk cache, under the package's compile settings: the same code a fresh
    # fit of these data would run.
    with sampling.compile_settings():
        compiled, _ = cache.compile_pymc_model(model, spec)
    return CompiledMechanisms(spec, model, compiled, time.perf_counter() - t0, layout_of(model))


__all__ = ["CompiledMechanisms", "LayoutError", "compile_mechanisms", "layout_of"]
