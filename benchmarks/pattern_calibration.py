"""False-positive and detection rates of the pattern rules and feedback flags on real fits
(issue 24; numbers in docs/patterns.md and docs/feedback.md).

Null: data simulated without patterns (``simulate(..., sessions=12, reliability=0.8)``), fitted
with and without the measurement-error term; for every patient the pattern probabilities
(``patterns_table``, calibrated and fixed rules) and the feedback at the last session
(``patient_feedback``, both calibrations): the share of patients with a probability >= 0.75 per
pattern, the share with a flag raised, and the mean probability (the calibrated rules' is
``alpha`` in expectation).

Detection: the same simulation with every fifth patient (``--every``) given a planted pattern
(:func:`bayes_alliance.sim.patterns.plant_patterns`, size in true innovation SDs, on top of the
states and measurement error), fitted with measurement error; the share of planted patients
with probability >= 0.75 for their pattern, and of the unplanted ones for any.

Usage: ``python benchmarks/pattern_calibration.py null|detect [--seeds 1 2 3] [--out DIR]``
(each fit of 120 patients takes 10-40 s on two cores).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_alliance import ModelSpec, SessionData, simulate
from bayes_alliance.analysis import pattern_table as ptab
from bayes_alliance.analysis.patterns import PATTERNS
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.feedback import patient_feedback as feedback
from bayes_alliance.feedback.patient_update import update_patient
from bayes_alliance.inference.fit import fit
from bayes_alliance.sim import patterns as sim

DESIGN = dict(n_therapists=12, patients_per_therapist=10, sessions=12, reliability=0.8)
COLS = [f"p_{p}" for p in PATTERNS]


def fit_frame(df: pd.DataFrame, me: bool, seed: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        return fit(
            data,
            ModelSpec(measurement_error=me),
            draws=500,
            tune=500,
            chains=2,
            random_seed=seed,
            progressbar=False,
            log_likelihood=False,
        )


def feedback_rows(result) -> pd.DataFrame:
    rows = []
    for pid in result.data.patients:
        pp = update_patient(result, pid)
        for cal in ("null", "fixed"):
            opt = feedback.FeedbackOptions(calibration=cal)
            s = feedback.patient_feedback(result, pid, options=opt, posterior=pp).summary
            tr = s["state_trend"] or {}
            rows.append(
                {
                    "patient": pid,
                    "calibration": cal,
                    "p_trend_up": tr.get("probability_strengthening", np.nan),
                    "p_trend_down": tr.get("probability_weakening", np.nan),
                    "p_corrective": s["flags"]["corrective_experience"]["probability"],
                    "p_rupture": s["flags"]["rupture"]["probability"],
                    "raised": any(f["raised"] for f in s["flags"].values()),
                    **{f"fb_{k}": val for k, val in s["patterns"]["patterns"].items()},
                }
            )
    return pd.DataFrame(rows)


def null_run(seed: int, me: bool) -> dict:
    df, _ = simulate(seed=seed, **DESIGN)
    t0 = time.perf_counter()
    res = fit_frame(df, me, seed)
    t_fit = time.perf_counter() - t0
    out: dict = {"seed": seed, "measurement_error": me, "n_patients": res.data.n_patients}
    out["seconds_fit"] = round(t_fit, 1)
    for cal in ("null", "fixed"):
        t0 = time.perf_counter()
        tab = ptab.patterns_table(res, calibration=cal)
        out[f"seconds_table_{cal}"] = round(time.perf_counter() - t0, 2)
        p = tab[COLS]
        out[f"table_{cal}"] = {
            "share_ge_075": p.ge(0.75).mean().round(4).to_dict(),
            "any_ge_075": float(p.ge(0.75).any(axis=1).mean()),
            "mean_p": p.mean().round(4).to_dict(),
            "share_0_or_1": float(np.isin(p.to_numpy(), [0.0, 1.0]).mean()),
        }
    fb = feedback_rows(res)
    for cal, g in fb.groupby("calibration"):
        out[f"feedback_{cal}"] = {
            "share_trend_up_ge_075": float(g["p_trend_up"].ge(0.75).mean()),
            "share_trend_down_ge_075": float(g["p_trend_down"].ge(0.75).mean()),
            "mean_p_trend_up": float(g["p_trend_up"].mean()),
            "share_flag_raised": float(g["raised"].mean()),
            "share_patterns_ge_075": {k: float(g[f"fb_{k}"].ge(0.75).mean()) for k in PATTERNS},
        }
    return out


def detect_run(seed: int, size: float, me: bool = True, every: int = 5) -> dict:
    df, truth = simulate(seed=seed, **DESIGN)
    ids = sorted(df["patient"].unique())
    # every `every`-th patient gets a pattern (cycling through them), the others none
    plan = {
        pid: PATTERNS[(i // every) % 5] if i % every == 0 else "none" for i, pid in enumerate(ids)
    }
    rng = np.random.default_rng([seed, 24])
    unit = truth.params.innovation_sd_predictor
    df, _ = sim.plant_patterns(df, plan, unit, rng, column=EXAMPLE_ROLES["predictor"], size=size)
    res = fit_frame(df, me, seed)
    post = res.idata.posterior
    out: dict = {"seed": seed, "size": size, "measurement_error": me, "every": every}
    out["autoregression"] = round(float(post["predictor_autoregression"].mean()), 3)
    out["innovation_sd"] = round(float(post["innovation_sd_predictor"].mean()), 3)
    for cal in ("null", "fixed"):
        tab = ptab.patterns_table(res, calibration=cal)
        tab["planted"] = tab["patient"].map(plan)
        rates = tab.groupby("planted")[COLS].agg(lambda s: float(s.ge(0.75).mean()))
        out[f"rates_{cal}"] = rates.round(4).to_dict(orient="index")
        out[f"counts_{cal}"] = tab["planted"].value_counts().to_dict()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["null", "detect"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--sizes", type=float, nargs="+", default=[3.0, 4.0])
    ap.add_argument("--no-error", action="store_true", help="detect: fit without the error")
    ap.add_argument("--every", type=int, default=5, help="detect: every n-th patient planted")
    ap.add_argument("--out", default="pattern_calibration")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in a.seeds:
        if a.what == "null":
            for me in (True, False):
                r = null_run(seed, me)
                results.append(r)
                print(json.dumps(r), flush=True)
        else:
            for size in a.sizes:
                r = detect_run(seed, size, not a.no_error, a.every)
                results.append(r)
                print(json.dumps(r), flush=True)
    tag = f"{a.what}{'_noerror' if a.no_error else ''}_every{a.every}_{'_'.join(map(str, a.seeds))}"
    (out / f"{tag}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
