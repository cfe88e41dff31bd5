"""Performance measures of a simulation study, with their Monte Carlo standard errors.

A simulation study (``bayes-alliance study``) fits every method to every simulated data set of
every condition and writes one row per task (condition, replication, method) and parameter
under ``DIR/results/`` (Parquet); ``DIR/conditions.csv`` holds each condition's simulator
settings. This module reads those rows and reduces them to one row per cell (condition,
method, parameter). It is pure pandas/numpy and works on a study that is still running: every
measure is computed from the replications present, and its Monte Carlo standard error (MCSE)
says how far it may move when more arrive.

The measures and their MCSEs follow Morris, White & Crowther (2019), "Using simulation studies
to evaluate statistical methods", *Statistics in Medicine* 38:2074-2102 (their Table 6).

Notation, for one cell: the tasks are i = 1..N (every replication the runner finished, failed
ones included); the fits with an estimate are the n of them that ran without error and gave a
finite estimate theta_i (the **successful fits**); theta is the true value of the row
(``truth``), SE_i the reported posterior SD or standard error (``sd``), [L_i, U_i] the
interval (``ci_low``, ``ci_high``) at level ``ci_prob``.

**Which fits enter the measures.** By default every successful fit enters, whether or not the runner marked it converged:
dropping the non-converged fits would condition the measures on an outcome of the data (a
method that fails to converge on its hardest data sets would look better than it is), and the
share that converged is reported beside them as ``convergence_rate``. With
``converged_only=True`` the measures are computed over the converged successful fits alone
(``n`` then counts those), which answers "how good is the method when it says it worked"; the
two summaries side by side show whether non-convergence hides bad estimates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.core.files import atomic_write_text
from bayes_alliance.study.tasks import ROW_COLUMNS

log = logging.getLogger(__name__)

KEYS = ("condition", "method", "parameter")
TASK = ("condition", "replication", "method")
# The row schema the runner writes (one row per task x parameter): the tasks' own.
# The measures of a summary row, after the keys and the condition's settings.
MEASURES = (
    "n",
    "n_failed",
    "truth",
    "mean_estimate",
    "bias",
    "bias_mcse",
    "relative_bias",
    "rmse",
    "rmse_mcse",
    "empirical_sd",
    "empirical_sd_mcse",
    "mean_sd",
    "sd_ratio",
    "ci_prob",
    "coverage",
    "coverage_mcse",
    "interval_width",
    "power",
    "power_mcse",
    "convergence_rate",
    "seconds_per_fit",
)
POWER_TARGET = 0.8
# Settings preferred as the x axis of the plots, in this order, when varied.
PREFERRED_X = ("sessions",)
SIZE_SETTINGS = ("n_patients", "patients_per_therapist", "n_therapists", "sessions")


def _failed(rows: pd.DataFrame) -> pd.Series:
    """True for a row without a usable estimate: an error text, or a non-finite estimate."""
    error = rows["error"] if "error" in rows else pd.Series("", index=rows.index)
    has_error = error.fillna("").astype(str).str.strip() != ""
    estimate = pd.to_numeric(rows["estimate"], errors="coerce").to_numpy(dtype=float)
    return has_error | ~pd.Series(np.isfinite(estimate), index=rows.index)


def _spread_failed_tasks(rows: pd.DataFrame) -> pd.DataFrame:
    """A failed task written without parameter names (one row, ``parameter`` empty) counts as
    a failure of every parameter known for its condition and method (of the whole study when
    that condition and method has no named row yet)."""
    param = rows["parameter"]
    blank = param.isna() | (param.astype(str).str.strip() == "")
    if not blank.any():
        return rows
    named, bare = rows[~blank], rows[blank].drop(columns="parameter")
    known = named[["condition", "method", "parameter"]].drop_duplicates()
    spread = bare.merge(known, on=["condition", "method"])
    # A condition and method with no named row at all: every parameter of the study.
    alone = bare.merge(known[["condition", "method"]].drop_duplicates(), how="left", indicator=True)
    alone = alone[alone["_merge"] == "left_only"].drop(columns="_merge")
    everything = pd.DataFrame({"parameter": named["parameter"].unique()})
    spread_all = alone.merge(everything, how="cross")
    return pd.concat([named, spread[rows.columns], spread_all[rows.columns]], ignore_index=True)


def clean_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The result rows with normalised types: keys as text, ``replication`` as an integer,
    numbers as floats, ``converged`` as bool (missing means not converged), ``error`` as text
    ("" when the fit worked), ``failed`` added. A task written twice keeps its last rows.

    Raises
    ------
    ValueError
        A column of the row schema is missing (``seconds``, ``converged``, ``error`` and the
        interval columns may be absent and are then filled as missing).
    """
    required = ("condition", "replication", "method", "parameter", "truth", "estimate")
    missing = [c for c in required if c not in rows.columns]
    if missing:
        raise ValueError(f"result rows lack the column(s) {missing}; expected {list(ROW_COLUMNS)}")
    out = rows.copy()
    for col in ("sd", "ci_low", "ci_high", "ci_prob", "seconds"):
        if col not in out:
            out[col] = np.nan
    if "converged" not in out:
        out["converged"] = False
    if "error" not in out:
        out["error"] = ""
    for col in ("condition", "method"):
        out[col] = out[col].astype(str)
    out["parameter"] = out["parameter"].astype("object")
    out["replication"] = pd.to_numeric(out["replication"]).astype("int64")
    for col in ("truth", "estimate", "sd", "ci_low", "ci_high", "ci_prob", "seconds"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out["converged"] = out["converged"].astype("boolean").fillna(False).astype(bool)
    out["error"] = out["error"].fillna("").astype(str)
    out = _spread_failed_tasks(out)
    out["parameter"] = out["parameter"].astype(str)
    out = out.drop_duplicates(subset=[*TASK, "parameter"], keep="last")
    out["failed"] = _failed(out)
    return out.reset_index(drop=True)


def summarise_results(
    rows: pd.DataFrame,
    conditions: pd.DataFrame | None = None,
    *,
    converged_only: bool = False,
) -> pd.DataFrame:
    """Reduce the result rows of a simulation study to one row per (condition, method,
    parameter).

    Parameters
    ----------
    rows
        The runner's rows (one per task x parameter; see :data:`ROW_COLUMNS`). A failed task
        has an ``error`` text and missing estimates; its rows count in ``n_failed`` and in the
        denominator of ``convergence_rate`` and nowhere else.
    conditions
        ``conditions.csv``: ``condition`` plus one column per simulator setting. The settings
        are placed between the keys and the measures. A setting named like a key or a measure
        is an error.
    converged_only
        Compute the measures over the converged successful fits only (see the module text);
        the default uses every successful fit.

    Returns
    -------
    pandas.DataFrame
        Columns ``condition, method, parameter``, the settings, then (sums over the n fits
        that enter the measures, e_i = theta_i - theta the error of fit i):

        - ``n``: fits that enter the measures; ``n_failed``: tasks without an estimate.
        - ``truth``: mean of theta over the cell's rows; ``mean_estimate``: mean of theta_i.
        - ``bias`` = (1/n) sum e_i; ``bias_mcse`` = sd(e) / sqrt(n), with sd the sample SD
          (divisor n - 1). When theta is the same for every replication, sd(e) is the
          empirical SE of Morris et al.
        - ``relative_bias`` = bias / abs(truth); missing when truth is 0.
        - ``rmse`` = sqrt((1/n) sum e_i^2); ``rmse_mcse`` = MCSE(MSE) / (2 rmse) (delta
          method), MCSE(MSE) = sqrt(sum (e_i^2 - MSE)^2 / (n (n - 1))).
        - ``empirical_sd`` = sd(theta_i); ``empirical_sd_mcse`` = empirical_sd /
          sqrt(2 (n - 1)).
        - ``mean_sd`` = (1/n) sum SE_i; ``sd_ratio`` = mean_sd / empirical_sd (1 when the
          reported uncertainty matches the spread of the estimates).
        - ``ci_prob``: the intervals' level (mean over the fits; it is one number per method).
        - ``coverage`` = c = share of fits with L_i <= theta <= U_i; ``coverage_mcse`` =
          sqrt(c (1 - c) / n_I), n_I the fits with both bounds finite (those that enter the
          interval measures).
        - ``interval_width`` = mean of U_i - L_i.
        - ``power`` = p = share of intervals excluding 0 (L_i > 0 or U_i < 0): the power to
          detect the effect when theta != 0, the false-positive rate when theta = 0;
          ``power_mcse`` = sqrt(p (1 - p) / n_I).
        - ``convergence_rate``: converged successful fits / N (every task of the cell,
          failed ones included: a failed fit has not converged).
        - ``seconds_per_fit``: mean wall time over the N tasks with a recorded time (failed
          ones included: they cost time too).

        A measure that needs more fits than there are is missing (NaN): SDs and MCSEs need
        n >= 2. Rows are sorted by condition, method, parameter.
    """
    data = clean_rows(rows)
    use = ~data["failed"]
    if converged_only:
        use &= data["converged"]
    g = _per_fit_terms(data, use).groupby(list(KEYS), sort=True)
    # 0/0 and x/0 give NaN or inf: a measure without enough fits is missing.
    out = _measures(g).replace([np.inf, -np.inf], np.nan).reset_index()
    return _with_settings(out, conditions)


def _per_fit_terms(data: pd.DataFrame, use: pd.Series) -> pd.DataFrame:
    """One row per fit with the terms the measures average: whether it is used and has an
    interval, its error and squared error, SD, interval hit, exclusion of 0 and width."""
    err = (data["estimate"] - data["truth"]).where(use)
    low, high = data["ci_low"], data["ci_high"]
    has_ci = use & np.isfinite(low) & np.isfinite(high)
    return pd.DataFrame(
        {
            "condition": data["condition"],
            "method": data["method"],
            "parameter": data["parameter"],
            "used": use.astype(float),
            "has_ci": has_ci.astype(float),
            "truth": data["truth"],
            "estimate": data["estimate"].where(use),
            "err": err,
            "sq": err**2,
            "sd": data["sd"].where(use),
            "ci_prob": data["ci_prob"].where(use),
            "inside": ((low <= data["truth"]) & (data["truth"] <= high))
            .astype(float)
            .where(has_ci),
            "excludes_0": ((low > 0) | (high < 0)).astype(float).where(has_ci),
            "width": (high - low).where(has_ci),
            "converged_ok": (data["converged"] & ~data["failed"]).astype(float),
            "failed": data["failed"].astype(float),
            "seconds": data["seconds"],
        }
    )


def _measures(g: Any) -> pd.DataFrame:
    """The measures of :func:`summarise_results` per group of fits (a pandas groupby of
    :func:`_per_fit_terms`), with their Monte Carlo SEs."""
    n = g["used"].sum()
    n_ci = g["has_ci"].sum()
    bias = g["err"].mean()
    rmse = np.sqrt(g["sq"].mean())
    emp_sd = g["estimate"].std(ddof=1)
    truth = g["truth"].mean()
    coverage = g["inside"].mean()
    power = g["excludes_0"].mean()
    mean_sd = g["sd"].mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame(
            {
                "n": n.astype("int64"),
                "n_failed": g["failed"].sum().astype("int64"),
                "truth": truth,
                "mean_estimate": g["estimate"].mean(),
                "bias": bias,
                "bias_mcse": g["err"].std(ddof=1) / np.sqrt(n),
                "relative_bias": bias / truth.abs().where(truth != 0),
                "rmse": rmse,
                "rmse_mcse": (g["sq"].std(ddof=1) / np.sqrt(n)) / (2 * rmse),
                "empirical_sd": emp_sd,
                "empirical_sd_mcse": emp_sd / np.sqrt(2 * (n - 1)),
                "mean_sd": mean_sd,
                "sd_ratio": mean_sd / emp_sd,
                "ci_prob": g["ci_prob"].mean().round(10),  # one level, without sum rounding
                "coverage": coverage,
                "coverage_mcse": np.sqrt(coverage * (1 - coverage) / n_ci),
                "interval_width": g["width"].mean(),
                "power": power,
                "power_mcse": np.sqrt(power * (1 - power) / n_ci),
                "convergence_rate": g["converged_ok"].sum() / g.size(),
                "seconds_per_fit": g["seconds"].mean(),
            }
        )


def _with_settings(summary: pd.DataFrame, conditions: pd.DataFrame | None) -> pd.DataFrame:
    if conditions is None:
        return summary[[*KEYS, *MEASURES]]
    if "condition" not in conditions.columns:
        raise ValueError("conditions table has no 'condition' column")
    settings = [c for c in conditions.columns if c != "condition"]
    clash = sorted(set(settings) & {*KEYS, *MEASURES, "replication"})
    if clash:
        raise ValueError(
            f"conditions table has setting(s) {clash} named like a summary column; rename them"
        )
    table = conditions.copy()
    table["condition"] = table["condition"].astype(str)
    table = table.drop_duplicates(subset="condition", keep="last")
    merged = summary.merge(table, on="condition", how="left", validate="many_to_one")
    return merged[[*KEYS, *settings, *MEASURES]]


def setting_columns(summary: pd.DataFrame) -> list[str]:
    """The condition settings of a summary: its columns between ``parameter`` and ``n``."""
    cols = list(summary.columns)
    return cols[cols.index("parameter") + 1 : cols.index("n")]


def varied_settings(summary: pd.DataFrame) -> list[str]:
    """Settings with more than one distinct value among the summary's conditions."""
    per_condition = summary.drop_duplicates("condition")
    return [c for c in setting_columns(summary) if per_condition[c].nunique(dropna=True) > 1]


def is_numeric_setting(summary: pd.DataFrame, col: str) -> bool:
    """Whether the setting ``col`` holds numbers (booleans are not numbers here)."""
    return bool(pd.api.types.is_numeric_dtype(summary[col])) and summary[col].dtype != bool


def default_x(summary: pd.DataFrame, prefer: Iterable[str] = PREFERRED_X) -> str | None:
    """The setting the plots put on the x axis: the first of ``prefer`` that is varied, else
    the first varied numeric setting, else None (the plots then use the condition names)."""
    varied = [c for c in varied_settings(summary) if is_numeric_setting(summary, c)]
    for name in prefer:
        if name in varied:
            return name
    return varied[0] if varied else None


def power_x(summary: pd.DataFrame) -> str | None:
    """The x axis of a power curve: the first varied sample-size setting (:data:`SIZE_SETTINGS`,
    patients before therapists before sessions), else :func:`default_x`."""
    return default_x(summary, prefer=SIZE_SETTINGS)


def _read_result_files(results: Path) -> pd.DataFrame:
    files = sorted(
        p
        for p in results.rglob("*.parquet")
        if not any(part.startswith((".", "_")) for part in p.relative_to(results).parts)
    )
    frames = []
    for path in files:
        try:
            frames.append(pd.read_parquet(path))
        except Exception as exc:  # a file being written, or a damaged one: skip it
            log.warning("skipped unreadable results file %s (%s)", path, exc)
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ROW_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def read_results(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """All result rows of a study folder (``DIR/results/**/*.parquet``), or an empty frame
    with the schema's columns when none are written yet.

    The files are read one by one, so a file that cannot be read yet (the runner writing it)
    or one with a column typed differently is skipped or combined rather than failing the
    whole read; hidden files (``.name``, the atomic writers' temporaries) are ignored.

    Raises
    ------
    FileNotFoundError
        ``out_dir`` does not exist.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"no study folder at {out}")
    results = out / "results"
    if not results.is_dir():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ROW_COLUMNS})
    return _read_result_files(results)


def read_conditions(out_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """``DIR/conditions.csv`` (``condition`` read as text), or None when it is not written."""
    path = Path(out_dir) / "conditions.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"condition": str})


def write_summary(out_dir: str | os.PathLike[str], *, converged_only: bool = False) -> pd.DataFrame:
    """Summarise a study folder: read ``DIR/results`` and ``DIR/conditions.csv``, write
    ``DIR/summary.csv`` (atomically, replacing an earlier one) and return the summary.

    Works on a study still running: the summary covers the replications written so far (an
    empty study gives a summary with the columns and no rows).
    """
    rows = read_results(out_dir)
    conditions = read_conditions(out_dir)
    summary = summarise_results(rows, conditions, converged_only=converged_only)
    atomic_write_text(Path(out_dir) / "summary.csv", summary.to_csv(index=False), force=True)
    return summary


__all__ = [
    "KEYS",
    "MEASURES",
    "POWER_TARGET",
    "ROW_COLUMNS",
    "clean_rows",
    "default_x",
    "is_numeric_setting",
    "power_x",
    "read_conditions",
    "read_results",
    "setting_columns",
    "summarise_results",
    "varied_settings",
    "write_summary",
]
