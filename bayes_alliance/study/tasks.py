"""One task of a study: simulate the data set of (condition, replication) and fit one method to
it, returning one row per parameter. Tasks are pure: everything they draw comes from seeds
derived from the study seed and the task's key, so a task gives the same rows wherever and
whenever it runs (which is what makes a stopped study resumable).

Methods (``kind``):

- ``joint``: the package's model (:mod:`bayes_alliance.model.build`) with the method's options;
  estimate = posterior mean, ``sd`` = posterior SD, equal-tailed interval, ``converged`` = the
  package's convergence check. Each worker process compiles once per model layout and refits
  (:mod:`bayes_alliance.inference.compiled`; the compiled kernels also come from the on-disk cache).
- ``two_step``: the literature's single equation fitted by OLS after observed person-mean
  centring (:func:`bayes_alliance.analysis.classic.two_step_regression`), cluster-robust SEs, Wald
  interval.
- ``observed_reml``: a random-intercept model fitted by REML (:func:`bayes_alliance.analysis.lmm.fit_reml`)
  with observed person-mean centring of the lagged outcome and predictor,
  ``y_t = b0 + b_ar (y_(t-1) - ybar_i) + b_W (x_(t-1) - xbar_i) + b_B xbar_i + u_i + e``, Wald
  interval.

The classic methods estimate ``state_effect`` and ``outcome_autoregression`` only; other
parameters get no row from them.

- ``mechanisms``: the k-series mechanism models on data of the mechanisms simulator
  (:mod:`bayes_alliance.study.mechanism_tasks`): one row per effect the condition has a true
  value of, ``converged`` per effect (its own R-hat and ESS).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.study.spec import Condition, Method, Study, settings_key

ROW_COLUMNS = (
    "condition",
    "replication",
    "method",
    "parameter",
    "truth",
    "estimate",
    "sd",
    "ci_low",
    "ci_high",
    "ci_prob",
    "converged",
    "seconds",
    "error",
)

# Worker-local compiled models, by model options and layout: a worker compiles each layout once.
_COMPILED: dict[str, Any] = {}


def cached_compiled(key: str, data: Any, compile_fn: Callable[[], Any]) -> Any:
    """This worker's compiled model under ``key`` if it fits ``data``'s layout, else
    ``compile_fn()`` (stored under ``key``). Main-model and mechanism tasks share the store;
    mechanism keys start with ``mechanism:``, so the two never collide."""
    from bayes_alliance.inference.compiled import LayoutError

    cm = _COMPILED.get(key)
    if cm is not None:
        try:
            cm.check(data)
            return cm
        except LayoutError:
            pass
    cm = compile_fn()
    _COMPILED[key] = cm
    return cm


@dataclass(frozen=True)
class Task:
    """What one task needs; small and picklable, so it travels to any Dask worker."""

    study: Study
    condition: str
    replication: int
    method: str

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.condition, self.replication, self.method)


def data_seed(study_seed: int, condition_key: int, replication: int) -> int:
    """Seed of a condition's replication: the same for every method, so methods are compared
    on the same data sets."""
    ss = np.random.SeedSequence([study_seed, condition_key, replication])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def method_seed(study_seed: int, condition_key: int, replication: int, method: str) -> int:
    """Seed of a method's sampler on one data set."""
    ss = np.random.SeedSequence(
        [study_seed, condition_key, replication, settings_key({"m": method})]
    )
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def simulate_task(task: Task) -> tuple[SessionData, dict[str, float]]:
    """The task's data set and the true values of the study's parameters."""
    from bayes_alliance.sim.sessions import simulate

    study = task.study
    cond = next(c for c in study.conditions() if c.id == task.condition)
    settings = study.settings(cond)
    seed = data_seed(study.seed, cond.key, task.replication)
    df, truth = simulate(seed=seed, **settings)
    therapist = "therapist" if settings.get("n_therapists", 40) > 1 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(
            df,
            patient="patient",
            session="session",
            predictor=truth.design.predictor_name,
            outcome=truth.design.outcome_name,
            therapist=therapist,
        )
    values = {p: float(getattr(truth.params, p)) for p in study.parameters}
    return data, values


def _wald(est: float, se: float, ci_prob: float) -> tuple[float, float]:
    z = NormalDist().inv_cdf(0.5 + ci_prob / 2)
    return est - z * se, est + z * se


def _observed_reml(data: SessionData) -> dict[str, tuple[float, float]]:
    from bayes_alliance.analysis.lmm import fit_reml

    x_lag = data.lagged(vocab.PREDICTOR, 1)
    y_lag = data.lagged(vocab.OUTCOME, 1)
    xbar = np.nanmean(np.where(data.present, data.x, np.nan), axis=1)
    ybar = np.nanmean(np.where(data.present, data.y, np.nan), axis=1)
    ok = ~np.isnan(data.y) & ~np.isnan(x_lag) & ~np.isnan(y_lag)
    pi, si = np.nonzero(ok)
    if len(np.unique(pi)) < 3:
        raise ValueError("too few patients with lagged observations")
    one = np.ones(len(pi))
    design = np.column_stack([one, y_lag[pi, si] - ybar[pi], x_lag[pi, si] - xbar[pi], xbar[pi]])
    fit = fit_reml(data.y[pi, si], design, one[:, None], pi)
    return {
        vocab.OUTCOME_AUTOREGRESSION: (float(fit.beta[1]), float(fit.se[1])),
        vocab.STATE_EFFECT: (float(fit.beta[2]), float(fit.se[2])),
    }


def _two_step(data: SessionData) -> dict[str, tuple[float, float]]:
    from bayes_alliance.analysis.classic import two_step_regression

    t = two_step_regression(data)
    values = t[["estimate", "se"]].to_numpy(dtype=float)
    rows = {str(n): i for i, n in enumerate(t.index)}
    return {
        name: (float(values[rows[name], 0]), float(values[rows[name], 1]))
        for name in (vocab.STATE_EFFECT, vocab.OUTCOME_AUTOREGRESSION)
    }


def _joint(
    data: SessionData, method: Method, seed: int, parameters: tuple[str, ...], ci_prob: float
) -> tuple[dict[str, tuple[float, float, float, float]], bool]:
    from bayes_alliance.inference.compiled import compile_model
    from bayes_alliance.spec.options import MODEL

    values = {"therapist_level": data.therapists is not None, **method.model}
    spec = MODEL.build(values)
    key = f"{method.name}:{sorted(values.items())}"
    s = method.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = cached_compiled(key, data, lambda: compile_model(data, spec))
        result = cm.fit(
            data,
            random_seed=seed,
            draws=s.draws,
            tune=s.tune,
            chains=s.chains,
            cores=1,
            complete=False,
        )
        names = [p for p in parameters if p in result.idata.posterior]
        summ = result.summary(ci_prob=ci_prob, ci_kind=BAND_KIND, var_names=names)
    table = summ.loc[names, ["mean", "sd", "ci_low", "ci_high"]].to_numpy(dtype=float)
    out = {
        p: (row[0], row[1], row[2], row[3]) for p, row in zip(names, table.tolist(), strict=True)
    }
    return out, bool(result.convergence.ok)


def task_parameters(task: Task) -> tuple[str, ...]:
    """The parameters a task gives rows for: those its method estimates (a mechanism study:
    those its condition has a true value of)."""
    study = task.study
    method = study.method(task.method)
    params = tuple(p for p in study.parameters if method.estimates(p))
    if study.simulator == "mechanisms":
        from bayes_alliance.study.mechanism_tasks import condition_parameters

        own = set(condition_parameters(study, _condition(task)))
        params = tuple(p for p in params if p in own)
    return params


def _condition(task: Task) -> Condition:
    return next(c for c in task.study.conditions() if c.id == task.condition)


def failed_rows(task: Task, error: str) -> pd.DataFrame:
    """The rows of a task that did not return (a worker died, the task raised outside the fit):
    NaN estimates with the error, so the failure is counted in the summary."""
    study = task.study
    params = task_parameters(task)
    rows = [
        {
            "condition": task.condition,
            "replication": task.replication,
            "method": task.method,
            "parameter": p,
            "truth": np.nan,
            "estimate": np.nan,
            "sd": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "ci_prob": study.ci_prob,
            "converged": False,
            "seconds": np.nan,
            "error": error or "failed",
        }
        for p in params
    ]
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def run_task(task: Task) -> pd.DataFrame:
    """Simulate the task's data set, fit its method and return one row per parameter the
    method estimates (columns :data:`ROW_COLUMNS`). A failed fit gives rows with NaN
    estimates and the error's message, so that it is counted, not lost."""
    study = task.study
    method = study.method(task.method)
    cond = _condition(task)
    if method.kind == "mechanisms":
        return _mechanism_rows(task, cond, method)
    data, truth = simulate_task(task)
    params = task_parameters(task)
    t0 = time.perf_counter()
    est: dict[str, tuple[float, float, float, float]] = {}
    converged, error = True, ""
    try:
        if method.kind == "joint":
            seed = method_seed(study.seed, cond.key, task.replication, method.name)
            est, converged = _joint(data, method, seed, params, study.ci_prob)
        else:
            point = _two_step(data) if method.kind == "two_step" else _observed_reml(data)
            est = {
                p: (e, se, *_wald(e, se, study.ci_prob))
                for p, (e, se) in point.items()
                if p in params
            }
    except Exception as exc:
        converged, error = False, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    ok = {p: converged for p in est}
    return _rows(task, params, truth, est, ok, seconds, error)


def _mechanism_rows(task: Task, cond: Condition, method: Method) -> pd.DataFrame:
    """A mechanism study's task: simulate at the task's data seed, fit, one row per effect
    with a true value (:mod:`bayes_alliance.study.mechanism_tasks`)."""
    from bayes_alliance.study import mechanism_tasks as mt
    from bayes_alliance.study.mechanism_truth import true_effects

    study = task.study
    df, sim = mt.simulate_condition(study, cond, data_seed(study.seed, cond.key, task.replication))
    truth = true_effects(sim, "therapist" in df)
    params = tuple(p for p in study.parameters if p in truth)
    t0 = time.perf_counter()
    est: dict[str, tuple[float, float, float, float]] = {}
    ok: dict[str, bool] = {}
    error = ""
    try:
        data = mt.series_data(df, sim.design)
        spec = mt.mechanism_spec(method, data, sim)
        seed = method_seed(study.seed, cond.key, task.replication, method.name)
        key = f"mechanism:{method.name}:{cond.id}"
        est, ok = mt.fit_mechanism_task(data, spec, method, key, seed, params, study.ci_prob)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return _rows(task, params, truth, est, ok, time.perf_counter() - t0, error)


def _rows(
    task: Task,
    params: tuple[str, ...],
    truth: dict[str, float],
    est: dict[str, tuple[float, float, float, float]],
    ok: dict[str, bool],
    seconds: float,
    error: str,
) -> pd.DataFrame:
    """One row per parameter (columns :data:`ROW_COLUMNS`); a parameter without an estimate
    gets NaNs and the error (or "no estimate")."""
    study = task.study
    nan4 = (np.nan, np.nan, np.nan, np.nan)
    rows = [
        {
            "condition": task.condition,
            "replication": task.replication,
            "method": task.method,
            "parameter": p,
            "truth": truth[p],
            **dict(zip(("estimate", "sd", "ci_low", "ci_high"), est.get(p, nan4), strict=True)),
            "ci_prob": study.ci_prob,
            "converged": bool(ok.get(p, False)) and not error,
            "seconds": seconds,
            "error": error if error else ("" if p in est else "no estimate"),
        }
        for p in params
    ]
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


__all__ = [
    "ROW_COLUMNS",
    "Task",
    "data_seed",
    "failed_rows",
    "method_seed",
    "run_task",
    "simulate_task",
    "task_parameters",
]
