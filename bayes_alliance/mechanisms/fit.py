"""Fitting the mechanism models and their results: within-level mediation, two informants (or
both in one model), an end-of-treatment outcome (:mod:`bayes_alliance.mechanisms.model`).

``fit_mechanisms(data, spec, random_seed=...)`` samples with nutpie through the package's one
sampling entry (:func:`bayes_alliance.inference.sampling.sample`: the compiled-model cache, the
compile settings, provenance, convergence check) and returns a :class:`MechanismResult` holding the
DataTree, spec, data and provenance; its effects are computed from the draws by
:mod:`bayes_alliance.mechanisms.effect_draws` (with the formulas of
:mod:`bayes_alliance.mechanisms.effects`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core import diagnostics, quiet
from bayes_alliance.core.intervals import CI_KIND, DEFAULT_CI_PROB
from bayes_alliance.data.series_data import (
    SeriesData,
)
from bayes_alliance.inference import sampling, storage
from bayes_alliance.inference.progress import timed_stage
from bayes_alliance.inference.results import MECHANISM, summarise_draws
from bayes_alliance.mechanisms.effect_draws import effect_draws
from bayes_alliance.mechanisms.methods import MechanismMethods
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.patient_density import patient_loglik
from bayes_alliance.mechanisms.predictive import N_DRAWS, posterior_predictive
from bayes_alliance.mechanisms.records import (
    series_data_from_table,
    series_provenance,
    series_table,
)
from bayes_alliance.mechanisms.spec import (
    MechanismSpec,
)

# Parameters checked for convergence and summarised, in this order (those a model has).
PARAMETERS = (
    "lag",
    "intercept",
    "sd_patient",
    "corr_patient",
    "sd_therapist",
    "corr_therapist",
    "sd_paths",
    "corr_paths",
    "sd_paths_therapist",
    "corr_paths_therapist",
    "corr_paths_patient",
    "sd_innovation",
    "corr_innovation",
    "sd_first",
    "measurement_error_sd",
    "sd_log_innovation",
    "trend",
    "sd_trend",
    "end_intercept",
    "end_trait_effect_patient",
    "end_trait_effect_therapist",
    "sd_end_therapist",
    "end_trait_effect",  # a file fitted before the levels were split (both parts, one effect)
    "end_change_per_sd",
    "end_change_effect",
    "end_sd",
    "baseline_effect",
    "baseline_effect_end",
)


# The effects a reader looks for first, by design (those a fit has): said in the report's
# summary and printed after a fit on the command line.
MECHANISM_KEY_EFFECTS = (
    "indirect_effect_within",
    "direct_effect_within",
    "total_effect_within",
    "proportion_mediated_within",
    "indirect_effect_within_second",
    "indirect_effect_within_difference",
    "state_effect",
    "state_effect_second",
    "state_effect_difference",
    "trait_effect_patient",
    "trait_effect_patient_second",
    "trait_effect_patient_difference",
    "end_trait_effect_patient",
    "end_trait_effect_therapist",
    "end_trait_effect",
    "end_change_effect",
    "indirect_effect_between",
    "direct_effect_between",
    "total_effect_between",
    "indirect_effect_between_end",
)


# One series alone has none of those paths: its dynamics and the parts of its variance.
SINGLE_KEY_EFFECTS = (
    "predictor_autoregression",
    "sd_predictor_autoregression_patient",
    "innovation_sd_predictor",
    "sd_patient_predictor",
    "sd_therapist_predictor",
    "icc_predictor_therapist",
    "reliability_predictor",
    "end_trait_effect_patient",
    "end_trait_effect_therapist",
    "end_change_effect",
)


def key_effects(design: str) -> tuple[str, ...]:
    """The effects a reader looks for first in a fit of this design (those it has)."""
    return SINGLE_KEY_EFFECTS if design == "single" else MECHANISM_KEY_EFFECTS


# Below this change reliability the series hardly inform the patients' changes: each change is
# then mostly the end outcome's residual and the prior, and a change effect or the trait-change
# correlation is read from the outcome rather than from the series (a three-level outcome
# driven by the therapist part only gave reliability 0.06, a change effect per SD of +0.78 and
# corr_trait_change 0.83, both truly 0, under the model that mixed the levels).
MIN_CHANGE_RELIABILITY = 0.3


def identification_of(idata: xr.DataTree) -> list[str]:
    """Messages for quantities the data do not identify: a posterior mean change reliability
    below :data:`MIN_CHANGE_RELIABILITY` (empty without a trend)."""
    if "change_reliability" not in idata.posterior:
        return []
    rel = float(np.mean(idata.posterior["change_reliability"].values))
    if rel >= MIN_CHANGE_RELIABILITY:
        return []
    return [
        f"the patients' series resolve their changes with a reliability of {rel:.2f} (below "
        f"{MIN_CHANGE_RELIABILITY}): about {rel:.0%} of the spread of the changes the series "
        "alone would give is true spread between patients, so each patient's change comes "
        "mostly from "
        "the prior and the end-of-treatment outcome, not from the series; the change effects "
        "and corr_trait_change are not identified by these data (longer series are needed)"
    ]


def identification_messages(result: MechanismResult) -> list[str]:
    """The identification messages a fit recorded in its provenance, or (a file written
    before they were recorded) :func:`identification_of` on its draws."""
    stored = result.provenance.get(diagnostics.IDENTIFICATION_KEY)
    if stored is not None:
        return [stored] if isinstance(stored, str) else [str(m) for m in stored]
    return identification_of(result.idata)


def summary_tree(idata: xr.DataTree) -> xr.DataTree:
    """The DataTree summaries and convergence checks read: each correlation matrix replaced by
    its entries below the diagonal (``corr_patient[predictor,outcome]``), since the constant
    diagonal and the repeated upper triangle have no R-hat or ESS."""
    post = idata.posterior.to_dataset()
    tidy = {}
    for name, da in post.data_vars.items():
        if str(name).startswith("corr_") and da.ndim == 4:
            labels = [str(v) for v in da.coords[da.dims[-2]].values]
            columns = [str(v) for v in da.coords[da.dims[-1]].values]
            if da.dims[-1] == f"{da.dims[-2]}_":  # a correlation matrix: below the diagonal
                i, j = np.tril_indices(len(labels), -1)
            else:  # cross correlations of two sets (corr_paths_patient): every entry
                i, j = (a.ravel() for a in np.indices((len(labels), len(columns))))
            pairs = [f"{labels[a]},{columns[b]}" for a, b in zip(i, j, strict=True)]
            tidy[name] = xr.DataArray(
                da.values[..., i, j],
                dims=("chain", "draw", f"{name}_pair"),
                coords={f"{name}_pair": pairs},
            )
        else:
            tidy[name] = da
    children = {"posterior": xr.Dataset(tidy)}
    if "sample_stats" in idata.children:
        children["sample_stats"] = idata.sample_stats.to_dataset()
    return xr.DataTree.from_dict(children)


def convergence_of(idata: xr.DataTree) -> diagnostics.Convergence:
    """The mechanism models' convergence check: their parameters (correlation matrices by the
    entries below the diagonal), divergences, E-BFMI."""
    names = [n for n in PARAMETERS if n in idata.posterior]
    error = "measurement_error_sd" in names  # present only in a fit with the error term
    return diagnostics.check_convergence(summary_tree(idata), names, measurement_error=error)


@dataclass
class MechanismResult(MechanismMethods):
    """A fitted mechanism model: the DataTree, the (resolved) spec, the data and provenance
    (a :class:`~bayes_alliance.inference.results.Result`, as the joint model's fit is)."""

    idata: xr.DataTree
    spec: MechanismSpec
    data: SeriesData
    provenance: dict[str, Any]
    convergence: diagnostics.Convergence

    @property
    def kind(self) -> str:
        """``"mechanism"``."""
        return MECHANISM

    @property
    def design(self) -> str:
        return self.spec.design(self.data)

    @property
    def parameters(self) -> list[str]:
        """The model's parameters this fit has, in summary order."""
        return [n for n in PARAMETERS if n in self.idata.posterior]

    def effect_draws(self) -> dict[str, np.ndarray]:
        return effect_draws(self.idata.posterior.to_dataset(), self.data, self.spec)

    def pointwise_loglik(self, unit: str = "patient") -> xr.DataArray:
        """Each patient's log density per draw (chain, draw, patient), its own latent means,
        change and missing cells integrated out and (three levels) given its therapist's drawn
        part (:mod:`bayes_alliance.mechanisms.patient_density`): the values of
        leave-one-patient-out (``bayes_alliance.analysis.comparison.loo``). Integrated traits
        only; per patient only."""
        if unit != "patient":
            raise ValueError(
                f"unit={unit!r}: a mechanism fit gives leave-one-patient-out values only "
                "(unit='patient')"
            )
        post = self.idata.posterior.to_dataset()
        arrays = {str(n): np.asarray(v.values) for n, v in post.data_vars.items()}
        seed = int(self.provenance.get("random_seed") or 0)
        return xr.DataArray(
            patient_loglik(arrays, self.data, self.spec, seed),
            dims=("chain", "draw", "patient"),
            coords={"patient": self.data.coords()["patient"]},
        )

    def posterior_predictive(
        self, n_draws: int = N_DRAWS, random_seed: int | None = None
    ) -> xr.DataTree:
        """Replicated series (at the observed cells) and end outcome for ``n_draws`` posterior
        draws, each given latent parts drawn from their conditional given the data, with the
        observed values (:func:`bayes_alliance.mechanisms.predictive.posterior_predictive`).
        ``random_seed`` defaults to the fit's seed: the same fit gives the same replicates."""
        seed = int(self.provenance.get("random_seed") or 0) if random_seed is None else random_seed
        post = self.idata.posterior.to_dataset()
        return posterior_predictive(post, self.data, self.spec, n_draws, seed)

    def effects(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Posterior summary of every derived effect (mean, sd, highest-density interval, ESS,
        R-hat), indexed by effect name. ``stationary`` is an indicator per draw: its mean is the
        posterior probability and it has no interval (NaN)."""
        out = summarise_draws(self.effect_draws(), ci_prob)
        if "stationary" in out.index:
            out.loc["stationary", ["ci_low", "ci_high"]] = np.nan
        return out

    def summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Posterior summary of the model's parameters (matrix entries as ``lag[to, from]``;
        highest-density intervals)."""
        return diagnostics.summarise(summary_tree(self.idata), self.parameters, ci_prob, CI_KIND)

    def __repr__(self) -> str:
        n = self.data.n_patients
        return (
            f"<MechanismResult {self.design}: series {', '.join(self.data.columns)}; "
            f"{n} patients; {self.convergence.message().splitlines()[0]}>"
        )

    def save(self, path: str | Path, *, force: bool = False, store: tuple[str, ...] = ()) -> Path:
        """Write the sampled draws (latent offsets and imputed cells left out: the effects do
        not use them), the sampler statistics, the data and the provenance (spec, seed,
        versions, data hash) as compressed NetCDF, atomically
        (:func:`bayes_alliance.inference.storage.write_result`); an existing file is replaced
        only with ``force``. ``store`` is the joint model's option: a mechanism result stores
        all it needs."""
        if store:
            raise ValueError("store= is for the main model; a mechanism result stores its draws")
        post = self.idata.posterior.to_dataset()
        keep = [v for v in post.data_vars if str(v) not in NOT_STORED]
        stats = (
            self.idata.sample_stats.to_dataset() if "sample_stats" in self.idata.children else None
        )
        return storage.write_result(
            path,
            post[keep],
            series_table(self.data),
            self.provenance,
            sample_stats=stats,
            force=force,
        )

    @classmethod
    def load(cls, path: str | Path) -> MechanismResult:
        """Read a result written by :meth:`save` (data re-validated); a joint-model file is
        refused, naming its loader."""
        return cls.from_stored(storage.read_stored(path, MECHANISM))

    @classmethod
    def from_stored(cls, stored: storage.StoredResult) -> MechanismResult:
        """The result a mechanism file holds (read by :func:`storage.read_stored`)."""
        prov = stored.provenance
        data = series_data_from_table(stored.data_table, prov)
        spec = MechanismSpec.from_dict(prov["spec"])
        return cls(stored.tree, spec, data, prov, convergence_of(stored.tree))


# Per-patient latent quantities: large, and not needed by any reported effect.
NOT_STORED = (
    "patient_mean",
    "therapist_offset",
    "end_therapist_offset",
    "path_offset",
    "change_offset",
    "missing_values",
)


def load_mechanisms(path: str | Path) -> MechanismResult:
    """Read a mechanism result written by :meth:`MechanismResult.save` (data re-validated)."""
    return MechanismResult.load(path)


def fit_mechanisms(
    data: SeriesData,
    spec: MechanismSpec | None = None,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    random_seed: int | None = None,
    progressbar: bool = True,
    cores: int | None = None,
) -> MechanismResult:
    """Sample a mechanism model.

    Parameters
    ----------
    data
        Two to four series (:class:`~bayes_alliance.data.series_data.SeriesData`).
    spec
        Options (default: therapist level when the data have therapists, random a and b paths
        with a mediator).
    draws, tune, chains, cores, progressbar
        Sampler settings (nutpie).
    random_seed
        The same seed, data and spec give the same draws; without one a seed is drawn and
        recorded in the provenance.
    """
    spec = (spec or MechanismSpec(therapist_level=data.patient_therapist is not None)).resolved(
        data
    )
    settings = sampling.SamplerRun(draws, tune, chains, cores, "nutpie", progressbar)
    what = f"{len(data.roles)} series, {data.n_patients} patients"
    with timed_stage(f"building the mechanism model ({what})"), quiet.hidden():
        model = build_mechanism_model(data, spec)
    run = sampling.sample(
        model,
        spec,
        settings,
        random_seed,
        data_hash=data.data_hash,
        check=convergence_of,
        adds=series_provenance(data),
    )
    return mechanism_result(run, data, spec)


def mechanism_result(
    run: sampling.Sampled, data: SeriesData, spec: MechanismSpec, stacklevel: int = 3
) -> MechanismResult:
    """The result of a sampled mechanism model (of :func:`fit_mechanisms` and of compiled
    refits): the identification messages recorded in the provenance and warned at the caller
    of the fit function."""
    messages = identification_of(run.idata)
    run.provenance[diagnostics.IDENTIFICATION_KEY] = messages
    if messages:
        warnings.warn(
            "not identified by these data: " + " ".join(messages),
            diagnostics.IdentificationWarning,
            stacklevel=stacklevel,
        )
    return MechanismResult(run.idata, spec, data, run.provenance, run.convergence)


__all__ = [
    "MECHANISM_KEY_EFFECTS",
    "MIN_CHANGE_RELIABILITY",
    "NOT_STORED",
    "PARAMETERS",
    "SINGLE_KEY_EFFECTS",
    "MechanismResult",
    "convergence_of",
    "effect_draws",
    "fit_mechanisms",
    "identification_messages",
    "identification_of",
    "key_effects",
    "load_mechanisms",
    "mechanism_result",
    "series_data_from_table",
    "series_provenance",
    "series_table",
]
