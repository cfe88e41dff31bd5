"""The tasks of a mechanism study (``simulator = "mechanisms"``): simulate one data set of a
condition with :func:`bayes_alliance.sim.mechanisms.simulate_mechanisms` at the task's seed,
fit the k-series mechanism model to it and return one row per effect that the condition has a
true value of (:mod:`bayes_alliance.study.mechanism_truth`).

The fitted model follows the simulated data: their series (by design), their therapist level,
end outcome and baseline column. A method's ``model`` options may set the therapist level, the
random lags (default: the paths the simulation varies, so the model has the simulation's
structure), the trend (default: on when the simulated patients' changes vary) and
``lag_trait_covariance``. Each row's estimate is the posterior mean, ``sd`` the posterior SD,
the interval equal-tailed (as the joint model's rows), and ``converged`` says that the effect's
own R-hat and bulk and tail ESS pass the package's thresholds
(:mod:`bayes_alliance.core.diagnostics`). Each worker process compiles a model once per
(method, condition) and refits it (:mod:`bayes_alliance.mechanisms.compiled`); a binary end
outcome (the sampled form) is fitted afresh each time.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core import diagnostics
from bayes_alliance.core.intervals import BAND_KIND
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.study.mechanism_truth import DESIGN_ROLES, true_effects
from bayes_alliance.study.spec import Condition, Method, Study
from bayes_alliance.study.tasks import cached_compiled

if TYPE_CHECKING:
    from bayes_alliance.mechanisms.spec import MechanismSpec
    from bayes_alliance.sim.mechanisms import MechanismTruth

# The simulator's column of each role, and of the end outcome and the baseline.
_COLUMN = {
    "predictor": "alliance",
    "second_predictor": "alliance_therapist",
    "mediator": "mediator",
    "outcome": "symptoms",
}
_END_COLUMNS = ("post_symptoms", "dropout")
BASELINE_COLUMN = "baseline"


def simulate_condition(
    study: Study, condition: Condition, seed: int
) -> tuple[pd.DataFrame, MechanismTruth]:
    """One data set of a condition (its long table and the simulator's record)."""
    from bayes_alliance.sim.mechanisms import simulate_mechanisms

    return simulate_mechanisms(seed=seed, **study.settings(condition))


def condition_truth(study: Study, condition: Condition) -> dict[str, float]:
    """The true value of every effect a condition's simulation has (generating values only:
    the same for every replication; one data set is drawn to read them, which also checks the
    condition's settings)."""
    _, truth = simulate_condition(study, condition, study.seed)
    return true_effects(truth, _has_therapists(study, condition))


def condition_parameters(study: Study, condition: Condition) -> tuple[str, ...]:
    """The study's parameters that this condition has a true value of (its rows)."""
    truth = condition_truth(study, condition)
    return tuple(p for p in study.parameters if p in truth)


def _has_therapists(study: Study, condition: Condition) -> bool:
    return int(study.settings(condition).get("n_therapists", 0)) > 0


def series_data(df: pd.DataFrame, design: str) -> SeriesData:
    """The simulated table as the mechanism model's data (the design's series, with the
    therapist, end-outcome and baseline columns the table has)."""
    roles = DESIGN_ROLES[design]
    extra: dict[str, Any] = {
        "therapist": "therapist" if "therapist" in df else None,
        "end_outcome": next((c for c in _END_COLUMNS if c in df), None),
        "covariates": [BASELINE_COLUMN] if BASELINE_COLUMN in df else [],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small simulated tables: data warnings are not news
        if roles == ("predictor",):
            return SeriesData.single(
                df, patient="patient", session="session", predictor=_COLUMN["predictor"], **extra
            )
        named = {r: _COLUMN[r] for r in roles}
        return SeriesData.from_frame(df, patient="patient", session="session", **named, **extra)


def mechanism_spec(method: Method, data: SeriesData, truth: MechanismTruth) -> MechanismSpec:
    """The model a method fits to a simulated data set (module docstring)."""
    from bayes_alliance.mechanisms.spec import MechanismSpec, lag_levels

    model = method.model
    roles = data.roles
    if "random_lags" in model:
        paths, between = lag_levels(list(model["random_lags"]), roles)
    else:
        paths = tuple((roles[to], roles[source]) for to, source in truth.random_paths)
        between = ()
    return MechanismSpec(
        therapist_level=bool(model.get("therapist_level", data.patient_therapist is not None)),
        random_paths=paths,
        therapist_paths=between,
        trend=bool(model.get("trend", truth.change_sd > 0)),
        lag_trait_covariance=bool(model.get("lag_trait_covariance", False)),
        baseline=(BASELINE_COLUMN,) if truth.baseline else (),
    )


def fit_mechanism_task(
    data: SeriesData,
    spec: MechanismSpec,
    method: Method,
    key: str,
    seed: int,
    parameters: tuple[str, ...],
    ci_prob: float,
) -> tuple[dict[str, tuple[float, float, float, float]], dict[str, bool]]:
    """Fit one data set; per parameter the (mean, sd, ci_low, ci_high) and whether its own
    R-hat and ESS pass (parameters the fit has no row of are left out)."""
    from bayes_alliance.mechanisms.compiled import compile_mechanisms
    from bayes_alliance.mechanisms.fit import fit_mechanisms

    s = method.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resolved = spec.resolved(data)
        if resolved.traits != "integrated":  # a binary end outcome: no compiled refits
            result = fit_mechanisms(
                data, resolved, draws=s.draws, tune=s.tune, chains=s.chains,
                random_seed=seed, cores=1, progressbar=False,
            )  # fmt: skip
        else:
            cm = cached_compiled(key, data, lambda: compile_mechanisms(data, resolved))
            result = cm.fit(
                data, random_seed=seed, draws=s.draws, tune=s.tune, chains=s.chains, cores=1
            )
        draws = result.effect_draws()
    names = [p for p in parameters if p in draws]
    if not names:
        return {}, {}
    ds = xr.Dataset({n: xr.DataArray(np.asarray(draws[n]), dims=("chain", "draw")) for n in names})
    tree = xr.DataTree(children={"posterior": xr.DataTree(ds)})
    table = diagnostics.summarise(tree, names, ci_prob, BAND_KIND)
    ess_min = diagnostics.ESS_PER_CHAIN_MIN * s.chains
    cols = ["mean", "sd", "ci_low", "ci_high", "r_hat", "ess_bulk", "ess_tail"]
    values = table.loc[names, cols].to_numpy(dtype=float)
    est: dict[str, tuple[float, float, float, float]] = {}
    ok: dict[str, bool] = {}
    for n, (mean, sd, lo, hi, rhat, ess_bulk, ess_tail) in zip(names, values.tolist(), strict=True):
        est[n] = (mean, sd, lo, hi)
        rhat_ok = s.chains < 2 or rhat <= diagnostics.RHAT_MAX
        ok[n] = bool(rhat_ok and min(ess_bulk, ess_tail) >= ess_min)
    return est, ok


__all__ = [
    "BASELINE_COLUMN",
    "condition_parameters",
    "condition_truth",
    "fit_mechanism_task",
    "mechanism_spec",
    "series_data",
    "simulate_condition",
]
