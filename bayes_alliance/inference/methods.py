r"""The methods a brms or Bambi user reaches for on a fitted joint model: ``loo``, ``compare``,
``pp_check``, ``bayes_r2``, ``hypothesis``, ``conditional_effects``, ``prior_summary`` and a
printed summary block (:class:`ResultMethods`, mixed into
:class:`~bayes_alliance.inference.fit.FitResult`).

Several of them are computed by layers above this one (leave-one-patient-out in
:mod:`bayes_alliance.analysis`, figures and the priors table in :mod:`bayes_alliance.report`).
A result cannot import them without turning the layers upside down, so those methods are bound
late by module name (:data:`LATE`, resolved with ``importlib`` on the first call, as the
package's own lazy names are): the table below is the complete list of such references, and
``tests/test_result_methods.py`` checks that every entry resolves.

ArviZ on ``result.idata``: a fit (integrated traits, no censored scores) writes the variable
``patient`` in the ``log_likelihood`` group (dims chain, draw, patient: each patient's marginal
log density of their observed cells, :mod:`bayes_alliance.analysis.patient_density`, numpy
alone) beside the per-cell ``predictor`` and ``outcome``;
:meth:`ResultMethods.ensure_log_likelihood` adds it to a loaded result or a fit without it. Then
``arviz_stats.loo(result.idata, var_name="by_patient", reff=result.relative_ess())`` is the
package's leave-one-patient-out (:meth:`ResultMethods.loo`) to rounding; without ``reff`` ArviZ
takes the relative efficiency from every posterior variable, per-patient draws included (slow at registry
size, and a slightly different ELPD with thousands of draws: see
:func:`bayes_alliance.analysis.comparison.relative_ess`). ``var_name="outcome"`` scores the
outcome's cells one session ahead (see :mod:`bayes_alliance.analysis.comparison`). It takes
draws x patients numbers (640 MB at 4,000 draws and 20,000 patients); no draws x patients x
sessions array is formed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core import diagnostics, vocab
from bayes_alliance.core.intervals import BAND_KIND, DEFAULT_CI_PROB, interval_bounds
from bayes_alliance.effects import hypothesis as hyp
from bayes_alliance.effects.derived import derived_effects
from bayes_alliance.effects.impulse import SCALES, predictor_shock_response
from bayes_alliance.inference import display, posthoc
from bayes_alliance.inference.unit_group import posterior_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayes_alliance.data.session_data import SessionData
    from bayes_alliance.effects.variance import Design
    from bayes_alliance.spec.model_spec import ModelSpec

# Method -> "module:function" of a higher layer (see the module docstring).
LATE = {
    "loo": "bayes_alliance.analysis.comparison:loo",
    "compare": "bayes_alliance.analysis.comparison:compare",
    "patient_loglik": "bayes_alliance.analysis.comparison:patient_pointwise",
    "relative_ess": "bayes_alliance.analysis.comparison:relative_ess",
    "pp_check": "bayes_alliance.report.pp_check:pp_check",
    "prior_summary": "bayes_alliance.report.priors_text:priors_table",
    "mechanism_prior_summary": "bayes_alliance.report.mechanism_priors:priors_table",
    "to_markdown": "bayes_alliance.report.format:to_markdown",
}
HORIZON = 10  # sessions after the shock shown by conditional_effects


def late(name: str) -> Any:
    """The function :data:`LATE` names for ``name``, imported now."""
    module, attr = LATE[name].split(":")
    return getattr(importlib.import_module(module), attr)


class ResultMethods:
    """brms-style methods of a fitted joint model (mixed into ``FitResult``: it supplies the
    attributes and ``summary``, ``r2``, ``within_moments``, ``parameters``)."""

    idata: xr.DataTree
    spec: ModelSpec
    data: SessionData
    provenance: dict[str, Any]
    convergence: diagnostics.Convergence

    if TYPE_CHECKING:  # provided by FitResult

        @property
        def parameters(self) -> list[str]: ...
        @property
        def design(self) -> Design: ...
        def summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame: ...
        def r2(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame: ...
        def within_moments(self) -> dict[str, np.ndarray]: ...
        def _posterior_arrays(self) -> dict[str, np.ndarray]: ...
        def effects(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame: ...

    # -- log-likelihood and LOO ---------------------------------------------------------------

    def ensure_log_likelihood(self, patient: bool = True) -> xr.DataTree:
        """The ``log_likelihood`` group, computed now where the result does not hold it (a
        loaded result, or a fit without ``log_likelihood``); returns the DataTree.

        Per cell it holds ``predictor`` and ``outcome`` (integrated traits: computed from the
        draws and the seed); with ``patient`` also the variable ``by_patient``, each patient's
        marginal log density per draw, for ``arviz_stats.loo(result.idata, var_name="by_patient",
        reff=result.relative_ess())`` (leave-one-patient-out; see the module docstring). A
        fresh fit holds both already.
        """
        if "log_likelihood" not in self.idata.children:
            if self.spec.traits != "integrated":
                raise ValueError(
                    "this result has no pointwise log-likelihood; refit with log_likelihood=True"
                )
            _, ll_vars = posthoc.complete(
                posterior_of(self.idata),
                self.data,
                self.spec,
                self.provenance["random_seed"],
                log_likelihood=True,
                impute=self.provenance.get("impute_missing", False),
                states=self.provenance.get("states", True),
            )
            self.idata["log_likelihood"] = xr.DataTree(xr.Dataset(ll_vars))
        if patient and vocab.BY_PATIENT not in self.idata.log_likelihood.data_vars:
            ll = late("patient_loglik")(self)
            ds = self.idata.log_likelihood.to_dataset().assign({vocab.BY_PATIENT: ll})
            self.idata["log_likelihood"] = xr.DataTree(ds)
        return self.idata

    def loo(self, unit: str = "patient", chunk: int | None = None) -> Any:
        """PSIS-LOO (Vehtari, Gelman & Gabry 2017) by ``unit``: ``"patient"`` (default, leave
        one patient out) or ``"session"``; a
        :class:`~bayes_alliance.analysis.comparison.LOOResult` (``elpd_loo``, ``se``, Pareto-k
        count and advice, ``elpd``: ArviZ's ELPDData)."""
        return late("loo")(self, unit, chunk)

    def relative_ess(self) -> float:
        """The relative efficiency :meth:`loo` gives PSIS: the mean-ESS of the named parameters
        (:attr:`parameters`) over the number of draws; pass it to ArviZ as
        ``arviz_stats.loo(result.idata, var_name="by_patient", reff=result.relative_ess())``
        (:func:`bayes_alliance.analysis.comparison.relative_ess` says why not every variable)."""
        names = self.parameters
        return float(late("relative_ess")(self.idata.posterior.to_dataset(), names))

    def compare(
        self, *others: Any, names: Sequence[str] | None = None, unit: str = "patient"
    ) -> pd.DataFrame:
        """Compare this fit with others of the same data by LOO (ArviZ's compare table:
        ``elpd``, ``se``, ``elpd_diff``, ``dse``, stacking ``weight``, ``p_loo``,
        ``n_high_k``, and Delta-R-squared against this fit). ``names`` label the fits (this
        one first; default ``model_1``, ``model_2``, ...)."""
        fits = [self, *others]
        labels = list(names) if names is not None else [f"model_{i + 1}" for i in range(len(fits))]
        if len(labels) != len(fits) or len(set(labels)) != len(labels):
            raise ValueError(f"names must be {len(fits)} distinct labels, got {labels}")
        return late("compare")(dict(zip(labels, fits, strict=True)), unit)

    # -- checks and tables --------------------------------------------------------------------

    def pp_check(self, kind: str = "density", **kwargs: Any) -> Figure:
        """Posterior predictive check as a matplotlib Figure: ``kind="density"`` (observed
        scores' density against replicated ones), ``"series"`` (chosen patients' observed series
        in the replicates' band) or ``"stat"`` (a statistic of the replicates against the
        observed one); see :func:`bayes_alliance.report.pp_check.pp_check` for the options."""
        return late("pp_check")(self, kind, **kwargs)

    def bayes_r2(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """R-squared per variance component (Rights & Sterba 2019, 2023) of both equations, as
        in :meth:`r2`, indexed by (equation, denominator, component); the whole-model Bayesian
        R-squared of the outcome (Gelman et al. 2019) is the row (outcome, model, bayes_r2)."""
        return self.r2(ci_prob).set_index(["equation", "denominator", vocab.COMPONENT])

    def prior_summary(self) -> pd.DataFrame:
        """The priors this fit used by parameter (the defaults scaled to its data, or the
        spec's overrides): ``symbol``, ``prior``, ``source``, ``note``."""
        return late("prior_summary")(self.spec, self.data)

    def summary_text(self, ci_prob: float = DEFAULT_CI_PROB) -> str:
        """A summary block as brms prints it: model, data sizes, sampler, the population-level
        parameters with intervals, R-hat and ESS, and the convergence line, laid out to fit a
        terminal (every column shown, unlike a printed wide DataFrame)."""
        return display.summary_block(self, self.summary(ci_prob), ci_prob)

    def summary_markdown(self, ci_prob: float = DEFAULT_CI_PROB) -> str:
        """``summary()`` as a Markdown table (pandas' ``to_markdown`` needs the tabulate package,
        which this package does not depend on)."""
        return late("to_markdown")(self.summary(ci_prob), decimals=3)

    def __str__(self) -> str:
        return self.summary_text()

    # -- hypotheses ---------------------------------------------------------------------------

    def hypothesis(
        self, hypotheses: str | Iterable[str], ci_prob: float = DEFAULT_CI_PROB
    ) -> pd.DataFrame:
        """Posterior probability of directional hypotheses about named parameters and effects,
        e.g. ``"state_effect < 0"`` or ``"state_effect - reverse_state_effect > 0"``; see
        :mod:`bayes_alliance.effects.hypothesis` (a point hypothesis ``a = 0`` is refused, with
        the reason)."""
        texts = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
        used: set[str] = set()
        for text in texts:
            left, _, right = hyp.parse(text)
            used |= set(hyp.names_in(left) + hyp.names_in(right))
        post = self.idata.posterior
        draws = {n: np.asarray(post[n].values) for n in self.parameters if post[n].ndim == 2}
        if not used <= set(draws):  # derived effects computed only when a hypothesis names one
            draws = {**self.effect_draws(), **draws}
        return hyp.hypothesis(texts, draws, list(draws), ci_prob)

    def effect_draws(self) -> dict[str, np.ndarray]:
        """The scalar derived effects of :meth:`effects` per draw, (chain, draw) each."""
        out = derived_effects(
            self._posterior_arrays(), self.spec, self.design, self.within_moments()
        )
        return {k: np.asarray(val) for k, val in out.items() if np.ndim(val) == 2}

    # -- conditional effects ------------------------------------------------------------------

    def conditional_effects(
        self,
        horizon: int = HORIZON,
        scale: str = "state",
        ci_prob: float = DEFAULT_CI_PROB,
        plot: bool = False,
    ) -> pd.DataFrame | Figure:
        r"""The implied response of both series over the sessions after a one-off shock to the
        predictor (alliance) at session 0, at the average dynamics (impulse response of the
        VAR(1), :mod:`bayes_alliance.effects.impulse`): by default the outcome's lagged
        response to an alliance state one within-person SD above the patient's own level.

        With reduced-form lag matrix :math:`\Phi^*` and a shock of size :math:`s` to the
        predictor, the response after :math:`h` sessions is :math:`r_h = \Phi^{*h} B_0^{-1}
        (s, 0)'` (:math:`B_0` the same-session path, identity without one); per draw, so the
        band carries the uncertainty of both the dynamics and the shock's size.

        Parameters
        ----------
        horizon
            Sessions after the shock (0..horizon).
        scale
            Size of the shock per draw: ``"state"`` (default) one within-person SD of the
            predictor's state, :math:`\sqrt{\operatorname{Var}(w_x)}` from the stationary
            covariance :math:`\Sigma_w = \Phi^* \Sigma_w \Phi^{*\prime} + \Sigma^*`
            (averaged over patients as in the standardised effects): the "one-SD alliance
            state" of the question how a session of unusually good alliance is followed;
            ``"innovation"`` one SD of the predictor's innovation,
            ``innovation_sd_predictor`` (a session's unexpected change in alliance, the usual
            impulse of VAR analyses; never larger than the state SD, and smaller whenever
            alliance depends on the previous session); ``"unit"`` one unit of the predictor's
            scale.
        ci_prob
            Level of the equal-tailed band (bands follow the package's convention).
        plot
            Return a Figure of both responses with their bands instead of the table.

        Returns
        -------
        pandas.DataFrame or matplotlib.figure.Figure
            Rows per (``variable``, ``session`` after the shock): ``mean``, ``ci_low``,
            ``ci_high`` in the variable's own units (the outcome's is the conditional effect).
        """
        if self.spec.dynamics != "var1" or self.spec.time_model == "continuous":
            raise ValueError(
                "conditional_effects needs the discrete-time VAR(1) dynamics (this fit has "
                f"dynamics={self.spec.dynamics!r}, time_model={self.spec.time_model!r}); "
                "continuous-time fits show their lag curves with Phi(dt) instead"
            )
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        post = self._posterior_arrays()
        size: np.ndarray | float = 1.0
        if scale == "innovation":
            size = np.asarray(post[vocab.INNOVATION_SD_PREDICTOR], dtype=float)
        elif scale == "state":
            size = np.sqrt(self.within_moments()["var_x"])
        resp = predictor_shock_response(post, self.spec.same_session, horizon, size)
        flat = resp.reshape(-1, horizon + 1, 2)
        lo, hi = interval_bounds(flat, ci_prob, BAND_KIND, axis=0)
        rows = [
            (var, h, float(flat[:, h, k].mean()), float(lo[h, k]), float(hi[h, k]))
            for k, var in enumerate(vocab.VARIABLES)
            for h in range(horizon + 1)
        ]
        table = pd.DataFrame(rows, columns=["variable", "session", "mean", "ci_low", "ci_high"])
        table.attrs.update(scale=scale, ci_prob=ci_prob)
        return _response_figure(table, self.data, ci_prob) if plot else table


def _response_figure(table: pd.DataFrame, data: SessionData, ci_prob: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.2), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    names = {vocab.PREDICTOR: data.roles.predictor, vocab.OUTCOME: data.roles.outcome}
    for ax, var in zip(axes, vocab.VARIABLES, strict=True):
        part = table[table["variable"] == var]
        ax.fill_between(part["session"], part["ci_low"], part["ci_high"], alpha=0.3, lw=0)
        ax.plot(part["session"], part["mean"], marker="o", ms=3)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(f"{names[var]} ({var})", fontsize=10)
        ax.set_xlabel("sessions after the shock")
    axes[0].set_ylabel(f"response (mean, {ci_prob:.0%} equal-tailed band)")
    return fig


__all__ = ["HORIZON", "LATE", "ResultMethods", "late"]
