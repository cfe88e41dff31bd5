"""Calibration over replications (slow: `make test-slow`).

Each study draws many data sets from one population, refits one compiled model to each (complete
data, so every data set has the compiled layout) and summarises, per named parameter, the
coverage of 90% equal-tailed intervals and the mean z = (posterior mean - truth) / posterior SD.
Targets (issue 10): coverage 85-95% and |mean z| < 0.3, or the reason stated where a parameter
cannot reach them. The tables are printed; with BAYES_ALLIANCE_CALIBRATION_OUT=DIR they are
also written as CSV (docs/calibration.md quotes them).

* ``two_level``: 240 patients x 12 sessions, fixed slopes.
* ``three_level``: 30 therapists x 8 patients x 12 sessions, fixed slopes.
* ``slopes``: 30 therapists x 6 patients x 12 sessions, random state slopes at both levels and a
  reverse path.
* ``sbc``: simulation-based calibration of the three-level model: every parameter drawn from a
  prior that the fit uses too (Talts et al. 2018), so coverage must be nominal for every
  parameter, the therapist SDs included, if model and simulator agree.
* ``sbc_slopes``: the same with random state slopes at both levels and their SDs from the prior.
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.sim.settings import TrueParameters
from bayes_alliance.spec.model_spec import ModelSpec

pytestmark = pytest.mark.slow

SCALE = float(os.environ.get("BAYES_ALLIANCE_CALIBRATION_SCALE", "1"))  # < 1 for a quick look
DRAWS = 1000


def _n(n: int) -> int:
    return max(8, int(n * SCALE))


N = lambda m, s: {"dist": "Normal", "mu": m, "sigma": s}  # noqa: E731
LN = lambda m, s: {"dist": "LogNormal", "mu": float(np.log(m)), "sigma": s}  # noqa: E731
# A fixed prior for the SBC: proper priors around the default truth; the therapist block has
# half-normal SDs at the default data scale (sd_x about 0.674, sd_y about 0.689) and an LKJ(2)
# correlation, the defaults until 0.2, not the Gamma(2) / LKJ(1) defaults of 0.3 (an SBC is
# valid under any prior the fit and the simulator share).
SBC_PRIORS = {
    "state_effect": N(-0.2, 0.1),
    "reverse_state_effect": N(-0.1, 0.1),
    "outcome_autoregression": N(0.4, 0.1),
    "predictor_autoregression": N(0.3, 0.1),
    "trait_corr_patient": {
        "dist": "TruncatedNormal",
        "mu": -0.3,
        "sigma": 0.2,
        "lower": -1.0,
        "upper": 1.0,
    },
    "trait_corr_therapist": {"dist": "LKJCorr", "eta": 2.0},
    "intercept_predictor": N(3.8, 0.3),
    "intercept_outcome": N(1.8, 0.3),
    "sd_patient_predictor": LN(0.5, 0.2),
    "sd_patient_outcome_total": LN(0.52, 0.2),
    "sd_therapist_predictor": {"dist": "HalfNormal", "sigma": 0.5 * 0.674},
    "sd_therapist_outcome_total": {"dist": "HalfNormal", "sigma": 0.5 * 0.689},
    "innovation_sd_predictor": LN(0.4, 0.15),
    "innovation_sd_outcome": LN(0.35, 0.15),
    "innovation_corr": {
        "dist": "TruncatedNormal",
        "mu": -0.2,
        "sigma": 0.15,
        "lower": -1.0,
        "upper": 1.0,
    },
}


SBC_SLOPE_PRIORS = {
    **SBC_PRIORS,
    "sd_state_effect_patient": {"dist": "HalfNormal", "sigma": 0.15},
    "sd_state_effect_therapist": {"dist": "HalfNormal", "sigma": 0.1},
}


def _prior_draw(seed: int, priors: dict | None = None) -> dict:
    """Every parameter from the SBC priors, each trait level's covariance turned into the
    simulator's regression form; non-stationary draws rejected (the model's prior is truncated
    to stationary dynamics)."""
    rng = np.random.default_rng(10_000 + seed)
    while True:
        out = {}
        for k, p in (priors or SBC_PRIORS).items():
            if p["dist"] == "LKJCorr":  # LKJ(eta) of a 2 x 2: (r + 1) / 2 ~ Beta(eta, eta)
                out[k] = 2.0 * rng.beta(p["eta"], p["eta"]) - 1.0
            elif p["dist"] == "Normal":
                out[k] = rng.normal(p["mu"], p["sigma"])
            elif p["dist"] == "LogNormal":
                out[k] = float(np.exp(rng.normal(p["mu"], p["sigma"])))
            elif p["dist"] == "HalfNormal":
                out[k] = abs(rng.normal(0, p["sigma"]))
            else:
                a, b = (p["lower"] - p["mu"]) / p["sigma"], (p["upper"] - p["mu"]) / p["sigma"]
                out[k] = float(stats.truncnorm(a, b, p["mu"], p["sigma"]).rvs(random_state=rng))
        for level in ("patient", "therapist"):
            _, sd_y, beta = TrueParameters.regression_form(
                out[f"sd_{level}_predictor"],
                out.pop(f"sd_{level}_outcome_total"),
                out.pop(f"trait_corr_{level}"),
            )
            out[f"sd_{level}_outcome"], out[f"trait_effect_{level}"] = sd_y, beta
        try:
            simulate(seed=0, n_therapists=1, patients_per_therapist=1, sessions=2, **out)
            return out
        except ValueError:
            continue


STUDIES = {
    "two_level": dict(
        spec=ModelSpec(therapist_level=False),
        settings=dict(
            n_therapists=1,
            patients_per_therapist=240,
            sessions=12,
            sd_therapist_predictor=0.0,
            sd_therapist_outcome=0.0,
        ),
        n=100,
    ),
    "three_level": dict(
        spec=ModelSpec(),
        settings=dict(n_therapists=30, patients_per_therapist=8, sessions=12),
        n=200,
    ),
    "slopes": dict(
        spec=ModelSpec(random_slopes=("patient", "therapist")),
        settings=dict(
            n_therapists=30,
            patients_per_therapist=6,
            sessions=12,
            sd_state_effect_patient=0.12,
            sd_state_effect_therapist=0.08,
            reverse_state_effect=0.1,
        ),
        n=100,
    ),
    # The therapist level's calibration at a fixed truth over the number of therapists
    # (issue 25): 8 patients x 12 sessions each, the simulator's default therapist SDs (0.2 and
    # 0.15 residual) and trait effect (-0.5); three_level above is the 30-therapist design.
    **{
        f"therapists_{n_t}": dict(
            spec=ModelSpec(),
            settings=dict(n_therapists=n_t, patients_per_therapist=8, sessions=12),
            n=100,
        )
        for n_t in (10, 20, 40)
    },
    "sbc": dict(
        spec=ModelSpec(priors=SBC_PRIORS),
        settings=dict(n_therapists=30, patients_per_therapist=8, sessions=12),
        n=200,
        prior=SBC_PRIORS,
    ),
    "sbc_slopes": dict(
        spec=ModelSpec(random_slopes=("patient", "therapist"), priors=SBC_SLOPE_PRIORS),
        settings=dict(n_therapists=30, patients_per_therapist=6, sessions=12),
        n=100,
        prior=SBC_SLOPE_PRIORS,
    ),
}


def _data(study: dict, seed: int) -> tuple[SessionData, dict]:
    settings = dict(study["settings"])
    if study.get("prior"):
        settings.update(_prior_draw(seed, study["prior"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df, truth = simulate(seed=seed, **settings)
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
    if not study["spec"].therapist_level:
        data = _two_level(df)
    return data, {n: getattr(truth.params, n) for n in study["spec"].free_parameters()}


def _two_level(df: pd.DataFrame) -> SessionData:
    roles = {k: v for k, v in EXAMPLE_ROLES.items() if k != "therapist"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(df.drop(columns="therapist"), **roles)


def _run(args: tuple[str, list[int]]) -> list[dict]:
    """One worker: compile once, refit every seed."""
    from bayes_alliance.inference.compiled import compile_model

    name, seeds = args
    warnings.simplefilter("ignore")
    study = STUDIES[name]
    spec = study["spec"]
    cm = compile_model(_data(study, seeds[0])[0], spec)
    rows = []
    for seed in seeds:
        data, truth = _data(study, seed)
        t0 = time.perf_counter()
        r = cm.fit(data, random_seed=seed, draws=DRAWS, tune=DRAWS, complete=False)
        s = r.summary(ci_prob=0.90, ci_kind="eti")
        seconds = time.perf_counter() - t0
        for p in spec.free_parameters():
            draws = r.draws(p).ravel()
            rows.append(
                {
                    "study": name,
                    "seed": seed,
                    "parameter": p,
                    "truth": truth[p],
                    "mean": s.loc[p, "mean"],
                    "sd": s.loc[p, "sd"],
                    "lo": s.loc[p, "ci_low"],
                    "hi": s.loc[p, "ci_high"],
                    "rank": float(np.mean(draws < truth[p])),
                    "ess_bulk": s.loc[p, "ess_bulk"],
                    "r_hat": s.loc[p, "r_hat"],
                    "divergent": int(r.convergence.divergences > 0),
                    "seconds": seconds,
                }
            )
    return rows


def calibration(name: str) -> pd.DataFrame:
    """Per parameter: replications, coverage (with its Monte Carlo SE), mean z, relative bias of
    the posterior mean, mean rank, median bulk ESS; printed and optionally written."""
    seeds = list(range(5000, 5000 + _n(STUDIES[name]["n"])))
    with ProcessPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(_run, [(name, seeds[0::2]), (name, seeds[1::2])]))
    raw = pd.DataFrame([row for part in parts for row in part])
    rows = []
    for p, d in raw.groupby("parameter", sort=False):
        inside = (d["lo"] <= d["truth"]) & (d["truth"] <= d["hi"])
        cover = float(inside.mean())
        scale = float(np.mean(np.abs(d["truth"])))
        rows.append(
            {
                "parameter": p,
                "replications": len(d),
                "coverage": cover,
                "coverage_mcse": float(np.sqrt(cover * (1 - cover) / len(d))),
                "mean_z": float(np.mean((d["mean"] - d["truth"]) / d["sd"])),
                "relative_bias": float(np.mean(d["mean"] - d["truth"]) / scale)
                if scale
                else np.nan,
                "mean_rank": float(d["rank"].mean()),
                "rank_uniformity_p": float(
                    stats.chisquare(np.histogram(d["rank"], bins=10, range=(0, 1))[0]).pvalue
                ),
                "median_ess_bulk": float(d["ess_bulk"].median()),
            }
        )
    table = pd.DataFrame(rows).set_index("parameter")
    fits = raw.drop_duplicates("seed")
    print(
        f"\n{name}: {len(fits)} data sets, median {fits['seconds'].median():.1f} s per fit, "
        f"{int(fits['divergent'].sum())} fits with divergences\n{table.round(3).to_string()}"
    )
    out = os.environ.get("BAYES_ALLIANCE_CALIBRATION_OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(out) / f"{name}.csv")
    return table


def _check(
    table: pd.DataFrame, exempt: dict[str, tuple[float, ...]] | None = None, max_z: float = 0.3
) -> None:
    """Coverage within 85-95% (widened by two Monte Carlo SEs) and |mean z| < ``max_z``, except
    for the parameters in ``exempt``: (lowest coverage, largest |mean z|[, highest coverage])
    accepted, with the reason stated where they are given."""
    exempt = exempt or {}
    misses = []
    for p, row in table.iterrows():
        lo_cov, z_max, *hi = exempt.get(str(p), (0.85, max_z))
        hi_cov = hi[0] if hi else 0.95
        slack = 2 * row["coverage_mcse"]
        inside = lo_cov - slack <= row["coverage"] <= hi_cov + slack
        if not inside or abs(row["mean_z"]) >= z_max:
            misses.append(f"{p}: coverage {row['coverage']:.3f}, mean z {row['mean_z']:+.2f}")
    assert not misses, misses


def test_two_level_calibration():
    _check(calibration("two_level"))


def test_three_level_calibration():
    # Issue 25's target at 30 therapists: |mean z| <= 0.2 and coverage >= .85 of 90%. Until 0.2
    # the therapist SDs missed it (mean z -0.52 and -0.45: each level in regression form, a flat
    # prior on the trait effect). With each level a covariance (Gamma(2) therapist SDs, LKJ(1)
    # correlation) the SDs meet it; the therapists' correlation and what is derived from it
    # (trait effect, residual SD) do not: a therapist mean has reliability about 0.5 here, the
    # correlation's posterior (SD about 0.3) is cut by its bound at -1 and its mean lies nearer 0
    # than the truth -0.55 (mean z about +0.4, coverage >= .89; docs/calibration.md). Exempt
    # at the measured size, stated there.
    _check(
        calibration("three_level"),
        max_z=0.2,
        exempt={
            "trait_corr_therapist": (0.85, 0.45),
            "trait_effect_therapist": (0.85, 0.45),
            "sd_therapist_outcome": (0.85, 0.45),
        },
    )


@pytest.mark.parametrize("n_therapists", [10, 20, 40])
def test_therapist_count_calibration(n_therapists):
    # Reported beside the 30-therapist design (docs/calibration.md), 50 data sets each at
    # BAYES_ALLIANCE_CALIBRATION_SCALE=0.5 (MCSE of a mean z about 0.14): no coverage below
    # 85% by more than two Monte Carlo SEs, and |mean z| < 0.65 (the therapists' correlation
    # reaches +0.6 with 10-20 therapists). With 10 therapists the therapist SDs' intervals are
    # prior-dominated and cover every truth, so coverage is not bounded above here.
    table = calibration(f"therapists_{n_therapists}")
    low = table["coverage"] < 0.85 - 2 * table["coverage_mcse"].clip(lower=0.03)
    far = table["mean_z"].abs() >= 0.65
    assert not (low | far).any(), table[low | far]


def test_random_slope_calibration():
    # The therapists' correlation and trait effect, as in the 30-therapist design (here 6
    # patients per therapist: mean z +0.67 and +0.49 over 50 data sets), and the patient slope
    # SD: with 12 sessions a patient's own slope is barely informed, so its SD sits near a prior
    # that has its mode at zero; the SBC of this model (test_sbc_slopes_calibration) shows
    # calibration averaged over the prior. The slopes' correlations with the therapist parts
    # (truth 0) are prior-dominated with 30 therapists: their intervals cover every truth
    # (docs/calibration.md).
    wide = dict.fromkeys(
        (
            "slope_trait_corr_therapist_predictor",
            "slope_trait_corr_therapist_outcome",
            "slope_trait_partial_corr_therapist_outcome",
        ),
        (0.85, 0.3, 1.0),
    )
    _check(
        calibration("slopes"),
        exempt={
            "trait_corr_therapist": (0.85, 0.8),
            "trait_effect_therapist": (0.85, 0.6),
            "sd_state_effect_patient": (0.85, 0.5),
            **wide,
        },
    )


@pytest.mark.parametrize("name", ["sbc", "sbc_slopes"])
def test_sbc_calibration(name):
    table = calibration(name)
    _check(table)
    # Ranks of the truth among the draws are uniform when model and simulator agree.
    assert (table["rank_uniformity_p"] > 0.001).all(), table["rank_uniformity_p"]
