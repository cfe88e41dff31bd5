"""Fitting: sample a built model and hold the result (posterior, spec, data, provenance).

The fitted result is a separate object from the unfitted model (:func:`bayes_alliance.model.build.build_model`);
nothing samples until :func:`fit` is called.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core import diagnostics, quiet, vocab
from bayes_alliance.core.intervals import CI_KIND, DEFAULT_CI_PROB
from bayes_alliance.data.describe import design_counts
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.effects import continuous as ct_effects
from bayes_alliance.effects import derived as effects
from bayes_alliance.effects.variance import Design, within_moments
from bayes_alliance.inference import display, predictive, sampling, states, storage
from bayes_alliance.inference.estimate import compare_line, expected_time
from bayes_alliance.inference.methods import ResultMethods
from bayes_alliance.inference.posthoc import complete_posterior
from bayes_alliance.inference.progress import stage, timed_stage
from bayes_alliance.inference.results import MAIN, SUMMARY_COLUMNS, summarise_draws
from bayes_alliance.inference.sampling import (
    STATES_AUTO_BYTES,
    SamplerRun,
    compile_settings,
    resolve_seed,
    states_wanted,
)
from bayes_alliance.inference.state_group import move_states, states_dataset, with_states
from bayes_alliance.inference.storage import STORE_EXTRAS
from bayes_alliance.inference.unit_group import move_unit_draws, posterior_of
from bayes_alliance.model.covariates import resolve
from bayes_alliance.model.grid import censored_cells
from bayes_alliance.model.structure import draws_last, lookup, slope_deviations
from bayes_alliance.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    import pymc as pm

log = logging.getLogger(__name__)

# Parameters outside the vocabulary that effect sizes read (session means, free first session).
_EXTRA_PARAMETERS = (
    "session_mean_predictor",
    "session_mean_outcome",
    "first_sd_predictor",
    "first_sd_outcome",
    "first_corr",
)


@dataclass
class FitResult(ResultMethods):
    """A fitted trait/state model (with the brms-style methods of
    :class:`~bayes_alliance.inference.methods.ResultMethods`: ``loo``, ``compare``,
    ``pp_check``, ``bayes_r2``, ``hypothesis``, ``conditional_effects``, ``prior_summary``,
    ``summary_text``, ``ensure_log_likelihood``; ``print(result)`` prints the summary block).

    Attributes
    ----------
    idata
        ``xarray.DataTree`` with groups posterior, sample_stats, observed_data,
        posterior_predictive and (when asked for) log_likelihood.
    spec
        The model options.
    data
        The data it was fitted to.
    provenance
        Seed, sampler settings, library versions, data hash, spec.
    convergence
        The convergence check run after sampling.
    """

    idata: xr.DataTree
    spec: ModelSpec
    data: SessionData
    provenance: dict[str, Any]
    convergence: diagnostics.Convergence = field(repr=False)
    _within: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        return display.fit_text(self)

    @property
    def kind(self) -> str:
        """``"main"``: the joint trait/state model (the kind of
        :class:`~bayes_alliance.inference.results.Result` this is)."""
        return MAIN

    def _repr_html_(self) -> str:
        return display.fit_html(self)

    @property
    def parameters(self) -> list[str]:
        """Named scalar parameters of this fit, in vocabulary order (continuous time: the lag
        effects at the effects interval after the drift rows)."""
        names = self.spec.free_parameters()
        if self.spec.time_model == "continuous":
            names = ct_effects.summary_rows(names)
        return [p for p in names if p in self.idata.posterior]

    def summary(
        self,
        ci_prob: float = DEFAULT_CI_PROB,
        ci_kind: str = CI_KIND,
        var_names: list[str] | None = None,
    ) -> pd.DataFrame:
        """Posterior summary indexed by parameter name.

        Columns: mean, sd, ci_low, ci_high (``ci_prob`` interval of kind ``"hdi"`` or ``"eti"``),
        ess_bulk, ess_tail, r_hat. Vector parameters (e.g. ``moderator_effect``) get one row per
        entry, named ``name[coord]``.
        """
        tree = self.idata
        if var_names and any(n not in tree.posterior for n in var_names):
            # Per-unit draws asked for by name: summarised from the merged posterior.
            tree = xr.DataTree(children={"posterior": xr.DataTree(posterior_of(tree))})
        return diagnostics.summarise(tree, var_names or self.parameters, ci_prob, ci_kind)

    @property
    def design(self) -> Design:
        """What the data contribute to population moments (moderators, caseloads, sessions)."""
        return Design.of(self.data, self.spec)

    def _posterior_arrays(self) -> dict[str, np.ndarray]:
        names = [*vocab.NAMED_PARAMETERS, *_EXTRA_PARAMETERS]
        return effects.posterior_arrays(posterior_of(self.idata), names)

    def slope_deviations(self) -> dict[str, np.ndarray]:
        """Each patient's therapist and patient slope deviations per draw, (chain, draw,
        patient), for the levels with random slopes."""
        post = posterior_of(self.idata)
        names = (
            vocab.SD_STATE_EFFECT_THERAPIST,
            vocab.SD_STATE_EFFECT_PATIENT,
            "state_effect_therapist_raw",
            "state_effect_patient_raw",
        )
        arrays = {n: np.asarray(post[n].values) for n in names if n in post}
        n_c, n_d = post.sizes["chain"], post.sizes["draw"]
        parts = slope_deviations(lookup(draws_last(arrays), self.spec), self.spec)

        def back(dev: np.ndarray) -> np.ndarray:  # (patient, chain x draw) -> (chain, draw, P)
            return np.moveaxis(dev, -1, 0).reshape(n_c, n_d, -1)

        out: dict[str, np.ndarray] = {}
        if parts.dev_therapist is not None:
            out[vocab.THERAPIST] = back(parts.dev_therapist[self.data.patient_therapist])
        if parts.dev_patient is not None:
            out[vocab.PATIENT] = back(parts.dev_patient)
        return out

    def within_moments(self) -> dict[str, np.ndarray]:
        """Model-implied within-person moments per draw, averaged over the data's patients with
        their own slopes (cached); see :func:`bayes_alliance.effects.variance.within_moments`."""
        if self._within is None and self.spec.time_model == "continuous":
            own = posterior_of(self.idata).get("state_effect_by_patient")
            self._within = ct_effects.within_moments(
                self._posterior_arrays(),
                self.spec,
                None if own is None else np.asarray(own.values),
                self.slope_deviations() if self.spec.random_slopes else None,
            )
        if self._within is None:
            slopes = self.slope_deviations() if self.spec.random_slopes else None
            self._within = within_moments(self._posterior_arrays(), self.spec, self.design, slopes)
        return self._within

    def r2_draws(self) -> xr.Dataset:
        """R-squared per variance component per draw (Rights & Sterba), both equations.

        Variables ``<equation>_<denominator>`` (e.g. ``outcome_total``, ``outcome_level1``), each
        with dims ``(chain, draw, component_<equation>_<denominator>)``; see
        :mod:`bayes_alliance.effects.derived`.
        """
        comps = self.r2_component_draws()
        return effects.r2_dataset(comps, three_level=self.spec.therapist_level)

    def r2_component_draws(self) -> dict[str, dict[str, np.ndarray]]:
        """The variance components themselves (f1, f2, ..., sigma2) per draw and equation."""
        return effects.r2_components(
            self._posterior_arrays(), self.spec, self.design, self.within_moments()
        )

    def r2(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Tidy R-squared summary: equation, denominator, component, mean, ci_low, ci_high.

        Adds the whole-model Bayesian R-squared of the outcome (Gelman et al. 2019) as
        denominator ``model``, component ``bayes_r2`` when states are stored.
        """
        table = effects.r2_summary(self.r2_draws(), ci_prob)
        if states_dataset(self.idata) is not None and self.spec.dynamics == "var1":
            post = with_states(self.idata)
            if self.spec.time_model == "continuous":
                assert self.data.times is not None
                br2 = ct_effects.bayesian_r2(post, self.data.y, self.data.times, self.spec)
            else:
                br2 = effects.bayesian_r2(post, self.data.y, self.spec, offsets=self.design.offsets)
            extra = effects.r2_summary(
                xr.Dataset(
                    {
                        "outcome_model": xr.DataArray(
                            br2[..., None], dims=("chain", "draw", "c"), coords={"c": ["bayes_r2"]}
                        )
                    }
                ),
                ci_prob,
            )
            table = pd.concat([table, extra], ignore_index=True)
        return table

    def effects(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Derived effects by name: standardised within and trait effects, long-run effects,
        ICCs, with a baseline the between-level mediation effects (``indirect_effect_between``,
        ``direct_effect_between``, ``total_effect_between``, ``proportion_mediated_between``;
        with the suffix ``_therapist`` for a therapist-level baseline; ``name[column]`` with
        several baseline columns) and, with a free first session, the posterior probability that the average dynamics
        are stationary (``stationary``; with a stationary first session stationarity is imposed
        by the model). Columns as in summary."""
        derived = effects.derived_effects(
            self._posterior_arrays(), self.spec, self.design, self.within_moments()
        )
        baseline = {"baseline": list(self.spec.baseline)}

        def array(val: np.ndarray) -> xr.DataArray:
            # Mediation effects of several baseline columns: one row per column.
            if val.ndim == 3:
                return xr.DataArray(val, dims=("chain", "draw", "baseline"), coords=baseline)
            return xr.DataArray(val, dims=("chain", "draw"))

        return summarise_draws({k: array(val) for k, val in derived.items()}, ci_prob)

    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of one variable, shape (chain, draw, ...) (the states too, from
        their group)."""
        if name in vocab.STATE_VARIABLES:
            w = states_dataset(self.idata)
            if w is not None:
                return np.asarray(w[name].values)
        return np.asarray(posterior_of(self.idata)[name].values)

    def states(self, patients: Sequence[object] | None = None) -> xr.Dataset:
        """Posterior draws of the states (``state_predictor``, ``state_outcome``: chain, draw,
        patient, session) of the chosen patients (ids; default all), taken from the result's
        ``latent_states`` group when it holds them, else computed from the drawn latent means
        (observed cells only)."""
        ids = list(self.data.patients) if patients is None else list(patients)
        known = {p: i for i, p in enumerate(self.data.patients)}
        unknown = [p for p in ids if p not in known]
        if unknown:
            raise ValueError(
                f"unknown patient id(s) {unknown}; e.g. {list(self.data.patients[:5])}"
            )
        rows = np.array([known[p] for p in ids], dtype=int)
        stored = states_dataset(self.idata)
        if stored is not None:
            return stored.isel({vocab.PATIENT: rows})
        post = posterior_of(self.idata)
        if self.spec.traits != "integrated" or not self.spec.store_states:
            raise ValueError("this result holds no states (store_states=False)")
        wx, wy = states.states_of(post, self.data, self.spec, rows)
        dims = ("chain", "draw", vocab.PATIENT, vocab.SESSION)
        coords = {vocab.PATIENT: ids, vocab.SESSION: self.data.coords[vocab.SESSION]}
        return xr.Dataset(
            {
                "state_predictor": xr.DataArray(wx, dims=dims, coords=coords),
                "state_outcome": xr.DataArray(wy, dims=dims, coords=coords),
            }
        )

    def prior_predictive(self, draws: int = 500, random_seed: int | None = None) -> xr.DataTree:
        """Add ``prior`` (parameters drawn from the priors actually used, scaled to these data)
        and ``prior_predictive`` (replicated observed cells) groups to :attr:`idata` and return
        it; see :mod:`bayes_alliance.inference.prior_predictive`. Seeded by ``random_seed`` (default: the
        fit's seed)."""
        from bayes_alliance.inference.prior_predictive import prior_predictive
        from bayes_alliance.model.build import build_model

        seed = self.provenance["random_seed"] if random_seed is None else int(random_seed)
        # The prior is the same with sampled traits; the integrated model has only parameters.
        spec = replace(self.spec, traits="integrated")
        prior, pp = prior_predictive(build_model(self.data, spec), self.data, spec, draws, seed)
        self.idata["prior"] = xr.DataTree(prior)
        self.idata["prior_predictive"] = xr.DataTree(pp)
        return self.idata

    def save(self, path: str | Path, *, force: bool = False, store: tuple[str, ...] = ()) -> Path:
        """Write the result to one compressed NetCDF file, atomically; refuses to replace an
        existing file without ``force``.

        Stored is what cannot be recomputed: the sampled parameters (float64, so that a loaded
        result reproduces every derived number bit for bit), the sampler statistics, the data
        and the provenance. With integrated traits the therapist deviations, latent means,
        states and pointwise log-likelihood are exact functions of those draws and the seed
        (:mod:`bayes_alliance.inference.posthoc`), so :meth:`load` recomputes them, as it recomputes the
        posterior predictive replicates. ``store`` adds copies for readers outside this
        package, in float32: any of ``"traits"`` (latent means, therapist deviations,
        per-patient state effects), ``"states"`` and ``"log_likelihood"``
        (:mod:`bayes_alliance.inference.storage`). A ``"log_likelihood"`` the result does not
        hold (a loaded one) is computed first (:meth:`ensure_log_likelihood`), so the file holds
        it; a result that cannot have one (traits sampled with ``log_likelihood=False``) is a
        :class:`ValueError` before anything is written.
        """
        if "log_likelihood" in store and "log_likelihood" not in self.idata.children:
            if self.spec.traits != "integrated":
                raise ValueError(
                    "store=('log_likelihood',) asks for the pointwise log-likelihood, but this "
                    "result has none and cannot compute it (its traits were sampled without "
                    "it); refit with log_likelihood=True, or save without 'log_likelihood'"
                )
            self.ensure_log_likelihood()
        return storage.write_fit(
            path, self.idata, self.spec, self.data, self.provenance, force=force, store=store
        )

    @classmethod
    def load(cls, path: str | Path) -> FitResult:
        """Read a result written by :meth:`save` (the data are rebuilt and re-validated; with
        integrated traits the latent means, therapist deviations and states are recomputed
        exactly from the stored draws and seed, the pointwise log-likelihood where the file
        holds a copy of it or when asked for: :meth:`ensure_log_likelihood`; a file without one
        logs one INFO line saying so). A mechanism model's file is refused, naming its loader;
        :func:`bayes_alliance.mechanisms.load.load_result` reads either kind."""
        return cls.from_stored(storage.read_stored(path, MAIN))

    @classmethod
    def from_stored(cls, stored: storage.StoredResult) -> FitResult:
        """The result a joint-model file holds (read by :func:`storage.read_stored`)."""
        stored_ll = "log_likelihood" in stored.tree.children
        tree, spec, data, prov = storage.fit_parts(stored)
        result = cls(tree, spec, data, prov, convergence_of(tree, spec, data))
        if stored_ll and "log_likelihood" not in tree.children:
            # The file's float32 copy was dropped (integrated traits): recompute it exactly, so
            # that a file saved with the log-likelihood loads with it.
            result.ensure_log_likelihood()
        elif not stored_ll and spec.traits == "integrated":
            # INFO, not a warning: nothing is wrong, but azs.loo(result.idata) needs the group.
            log.info(
                "the results file holds no log_likelihood group; call "
                "result.ensure_log_likelihood() before arviz_stats.loo(result.idata, var_name=%r)",
                vocab.BY_PATIENT,
            )
        return result


def convergence_of(
    idata: xr.DataTree, spec: ModelSpec, data: SessionData | None = None
) -> diagnostics.Convergence:
    """The joint model's convergence check: its named parameters and a free first session's
    (R-hat, ESS), divergences, E-BFMI. With ``data`` the SD parameters' prior scales (their
    half-normal sigmas) are the yardstick for an SD heading to 0
    (:func:`bayes_alliance.core.chains.diagnose`)."""
    names = spec.free_parameters()
    if spec.first_session == "free":
        names += ["first_sd_predictor", "first_sd_outcome", "first_corr"]
    scales = None if data is None else _scales(data, spec)
    return diagnostics.check_convergence(idata, names, scales, spec.measurement_error)


def _scales(data: SessionData, spec: ModelSpec) -> dict[str, float]:
    """The largest sigma of each half-normal prior (the SDs' prior scales)."""
    from bayes_alliance.model.priors import DataScale, default_priors

    priors = default_priors(spec, DataScale.of(data))
    return {n: float(np.max(p["sigma"])) for n, p in priors.items() if p["dist"] == "HalfNormal"}


def _posthoc(
    model: pm.Model | None,
    data: SessionData,
    spec: ModelSpec,
    log_likelihood: bool,
    impute_missing: bool,
    keep_states: bool,
) -> Callable[[xr.DataTree, int], xr.DataTree]:
    """The joint model's step after sampling: latent means, states and the pointwise
    log-likelihood from the draws (integrated traits), or the log-likelihood of the sampled
    model; the observed data and posterior predictive groups."""

    def complete(idata: xr.DataTree, seed: int) -> xr.DataTree:
        if spec.traits == "integrated":
            idata = complete_posterior(
                idata, data, spec, seed, log_likelihood, impute_missing, keep_states
            )
        else:
            if log_likelihood:
                import pymc as pm

                with compile_settings():
                    pm.compute_log_likelihood(idata, model=model, progressbar=False)
            # The sampled model returns its states as deterministics in the posterior.
            idata = move_unit_draws(move_states(idata), spec.free_parameters())
        if "trait_predictor" in posterior_of(idata):
            idata = predictive.add_groups(idata, data, spec, seed, keep_states)
        return idata

    return complete


def identification_of(
    result_posterior: xr.DataTree, data: SessionData, spec: ModelSpec
) -> list[str]:
    """Messages for measurement-error SDs the data do not identify (empty without the error
    term): :func:`bayes_alliance.effects.identification.error_identification` on the posterior
    draws against the scales of the half-normal priors the fit used."""
    if not spec.measurement_error:
        return []
    from bayes_alliance.effects.identification import error_identification, state_collapse
    from bayes_alliance.model.priors import DataScale, default_priors

    names = (vocab.MEASUREMENT_ERROR_SD_PREDICTOR, vocab.MEASUREMENT_ERROR_SD_OUTCOME)
    innovations = (vocab.INNOVATION_SD_PREDICTOR, vocab.INNOVATION_SD_OUTCOME)
    priors = default_priors(spec, DataScale.of(data))
    sigma = {
        n: float(np.max(priors[n]["sigma"]))
        for n in (*names, *innovations)
        if n in priors and priors[n]["dist"] == "HalfNormal"
    }
    post = result_posterior.posterior
    draws = {n: np.asarray(post[n].values, dtype=float) for n in sigma if n in post}
    if spec.time_model == "continuous":  # no innovation SDs (a diffusion per time unit)
        return error_identification(draws, {n: sigma[n] for n in names if n in sigma})
    pairs = dict(zip(vocab.VARIABLES, zip(innovations, names, strict=True), strict=True))
    return error_identification(draws, {n: sigma[n] for n in names if n in sigma}) + state_collapse(
        draws, pairs, sigma
    )


def record_identification(run: Any, data: SessionData, spec: ModelSpec) -> None:
    """Store the identification messages in the run's provenance (models with measurement
    error) and warn once when there are any."""
    if not spec.measurement_error:
        return
    messages = identification_of(run.idata, data, spec)
    run.provenance[diagnostics.IDENTIFICATION_KEY] = messages
    if messages:
        warnings.warn(
            "measurement error not identified by these data: " + " ".join(messages),
            diagnostics.IdentificationWarning,
            stacklevel=3,
        )


def data_provenance(data: SessionData) -> dict[str, Any]:
    """What the joint model adds to a fit's provenance about its data."""
    return {"roles": asdict(data.roles), "data_description": design_counts(data)}


def fit(
    data: SessionData,
    spec: ModelSpec | None = None,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    random_seed: int | None = None,
    sampler: str = "nutpie",
    progressbar: bool = True,
    cores: int | None = None,
    log_likelihood: bool = True,
    impute_missing: bool = False,
    states: bool | None = None,
) -> FitResult:
    """Sample the joint trait/state model.

    Parameters
    ----------
    data
        Validated session data.
    spec
        Model options; default three-level (two-level without a therapist column).
    draws, tune, chains
        Posterior draws per chain, tuning steps per chain, number of chains.
    random_seed
        Seed; the same seed, data and spec give the same draws. Without one a seed is drawn
        and recorded in ``result.provenance["random_seed"]`` (``seed_drawn`` True), so the run
        can still be repeated.
    sampler
        ``"nutpie"`` (default), ``"pymc"``, or through JAX (a GPU; needs the ``jax`` extra)
        ``"numpyro"`` or ``"nutpie-jax"``.
    progressbar
        Show sampling progress.
    cores
        Chains run in parallel on this many cores (default: up to 2).
    log_likelihood
        Store the pointwise log-likelihood of every observed cell (needed for LOO and
        :func:`bayes_alliance.analysis.comparison.compare`); it takes draws x cells x 2 numbers.
        With integrated traits also each patient's marginal log density (the variable
        ``by_patient``, draws x patients), so that ``arviz_stats.loo(result.idata,
        var_name="by_patient")`` is the leave-one-patient-out of :meth:`FitResult.loo`. It is
        numpy and numba alone (a fit from the warm cache imports no PyTensor for it) and took
        about 1-2 s at 2,000 patients x 20 sessions and 2 x 1,000 draws, with or without gaps,
        on a shared 2-core machine; not written with scores censored at a ceiling or
        floor (a patient's density would be a multivariate normal probability: such fits
        compare by session).
    impute_missing
        With integrated traits, draw the states of missing cells inside a series too (forward
        filtering, backward sampling given each drawn latent mean); else they are NaN.
    states
        Hold every draw's states (chains x draws x patients x sessions x 2 numbers) in the
        posterior, and posterior predictive replicates of the observed cells
        (:mod:`bayes_alliance.inference.predictive`). The default holds them up to
        :data:`STATES_AUTO_BYTES` (1 GiB) and otherwise leaves them out (recorded in the
        provenance); :meth:`FitResult.states` computes states for chosen patients either way.
        The ``observed_data`` group is always there.

    Returns
    -------
    FitResult
        With the convergence check done; a failed check warns with ``ConvergenceWarning``.

    Notes
    -----
    With nutpie, a rough estimate of the fit's time is logged before it starts and the time
    it took beside it at the end (logger ``bayes_alliance.progress``; the command line shows
    both): a formula in the data's size fitted to ``benchmarks/README.md``
    (:mod:`bayes_alliance.inference.estimate`).
    """
    started = time.perf_counter()
    spec = spec or ModelSpec(therapist_level=data.therapists is not None)
    # "auto" baseline level resolved once here, so that the result's spec records the level.
    spec = resolve(data, spec)
    settings = SamplerRun(draws, tune, chains, cores, sampler, progressbar)
    keep_states = states_wanted(data, chains, draws, states)
    # A fit of these data and spec made before, its kernels in the cache: sampled without
    # building the model (no PyMC import); else built, and its warm entry written.
    pre, found, model = None, None, None
    if sampler == "nutpie" and spec.traits == "integrated":
        from bayes_alliance.inference import warm

        pre = warm.pre_key(data, spec)
        found = warm.load(pre)
    expected = expected_time(data, spec, settings, warm=found is not None)
    if expected is not None:
        stage(expected.line())
    if found is None:
        from bayes_alliance.model.build import build_model

        what = f"{data.n_patients} patients x {data.n_sessions} sessions"
        with timed_stage(f"building the model ({what})"), quiet.hidden():
            model = build_model(data, spec)
    run = sampling.sample(
        model,
        spec,
        settings,
        random_seed,
        data_hash=data.data_hash,
        check=lambda idata: convergence_of(idata, spec, data),
        adds={"impute_missing": impute_missing, "states": keep_states, **data_provenance(data)},
        posthoc=_posthoc(model, data, spec, log_likelihood, impute_missing, keep_states),
        warm=found,
        pre_key=pre,
    )
    record_identification(run, data, spec)
    if expected is not None:
        cached = bool(run.provenance["timing"].get("compile_cache_hit"))
        stage(compare_line(expected, time.perf_counter() - started, cached))
    result = FitResult(run.idata, spec, data, run.provenance, run.convergence)
    censored = bool(spec.censored) and censored_cells(data, spec).any
    if log_likelihood and spec.traits == "integrated" and not censored:
        with timed_stage("per-patient log-likelihood"):
            result.ensure_log_likelihood()
    return result


__all__ = [
    "STATES_AUTO_BYTES",
    "STORE_EXTRAS",
    "SUMMARY_COLUMNS",
    "FitResult",
    "compile_settings",
    "convergence_of",
    "data_provenance",
    "fit",
    "resolve_seed",
    "states_wanted",
]
