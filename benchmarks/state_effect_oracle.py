"""Is the mechanism model's interval for the state effect calibrated, or are a study's seeds
unlucky? A check against an estimator that sees the true states.

Usage::

    python benchmarks/state_effect_oracle.py [--seeds 401-420] [--fit] [--reference 300]

For each seed it draws the end-outcome data of ``tests/test_mechanism_recovery_slow.py`` (two
series, 200 patients x 20 sessions, slopes with SD 0.1, Gaussian end outcome) and computes the
*oracle* estimate of the state effect (alliance state at t -> symptoms state at t+1): least
squares of the true symptom states on the true lagged states of both series, from
:attr:`MechanismTruth.states` (no latent means, no trends to estimate, no Bayesian model).
Over ``--reference`` other seeds it prints the oracle's sampling SD, the spread that no method
on these data can beat.

With ``--fit`` it also fits the mechanism model (2 chains x 500 draws, as the slow test) and
prints, per seed, the posterior mean and SD beside the oracle. If the posterior is calibrated
the posterior mean is close to the conditional expectation of the oracle given the observed
data, so that, averaged over seeds,

    E[posterior variance] = Var(oracle - truth) + E[(posterior mean - oracle)^2]

(the oracle's error splits into what the data can tell and what they cannot). The script
prints both sides, the coverage of the truth by both intervals, and the SDs of the errors.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from end_outcome_moments import draw  # the study's data sets: one definition for both scripts

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import MechanismTruth

Z90 = 1.6449


def oracle(truth: MechanismTruth) -> tuple[float, float]:
    """Least squares of symptom states on the lagged states of both series (all patients
    pooled; the states have mean 0): the effect of the alliance state and its SE."""
    coef, se = truth.state_lag_ols()
    return float(coef[1, 0]), float(se[1, 0])


def posterior(df: pd.DataFrame, seed: int) -> tuple[float, float, float, float]:
    from bayes_alliance.mechanisms.fit import fit_mechanisms

    data = SeriesData.from_frame(
        df,
        patient="patient",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        end_outcome="post_symptoms",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_mechanisms(
            data,
            MechanismSpec(),
            draws=500,
            tune=500,
            chains=2,
            random_seed=seed,
            progressbar=False,
        )
    row = res.effects(ci_prob=0.9).loc["state_effect"]
    return float(row["mean"]), float(row["sd"]), float(row["ci_low"]), float(row["ci_high"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="401-420")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--reference", type=int, default=300, help="seeds for the oracle's SD")
    ap.add_argument("--fit", action="store_true", help="also fit the mechanism model")
    args = ap.parse_args()
    lo, _, hi = args.seeds.partition("-")
    seeds = range(int(lo), int(hi or lo) + 1)

    ref = [oracle(draw(s, args.sessions)[1]) for s in range(10_000, 10_000 + args.reference)]
    ref_est = np.array([r[0] for r in ref])
    rows = []
    for seed in seeds:
        df, truth = draw(seed, args.sessions)
        true = float(truth.lag[1, 0])
        est, se = oracle(truth)
        row = {"seed": seed, "truth": true, "oracle": est, "oracle_se": se}
        row["oracle_covered"] = abs(est - true) <= Z90 * se
        if args.fit:
            t0 = time.perf_counter()
            mean, sd, low, high = posterior(df, seed)
            row |= {"post_mean": mean, "post_sd": sd, "seconds": time.perf_counter() - t0}
            row["post_covered"] = low <= true <= high  # equal-tailed, as the slow test
        rows.append(row)
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    t = pd.DataFrame(rows).set_index("seed")
    with pd.option_context("display.width", 160):
        print(t.round(4).to_string())
    truth = t["truth"].iloc[0]
    print(
        f"\noracle over {args.reference} reference seeds: mean {ref_est.mean():.4f}, "
        f"SD {ref_est.std(ddof=1):.4f} (truth {truth})"
    )
    print(
        f"these seeds: oracle error SD {(t['oracle'] - t['truth']).std(ddof=1):.4f}, "
        f"oracle 90% intervals cover {int(t['oracle_covered'].sum())} of {len(t)}"
    )
    if args.fit:
        diff = t["post_mean"] - t["oracle"]
        lhs = float((t["post_sd"] ** 2).mean())
        rhs = float(ref_est.var(ddof=1) + (diff**2).mean())
        print(
            f"posterior: error SD {(t['post_mean'] - t['truth']).std(ddof=1):.4f}, "
            f"mean SD {t['post_sd'].mean():.4f}, 90% intervals cover "
            f"{int(t['post_covered'].sum())} of {len(t)}"
        )
        print(
            f"posterior mean - oracle: mean {diff.mean():.4f}, RMS {np.sqrt((diff**2).mean()):.4f}"
        )
        print(
            f"E[posterior var] {lhs:.6f} vs oracle var + E[(post - oracle)^2] {rhs:.6f} "
            f"(ratio {lhs / rhs:.3f}; 1 when calibrated)"
        )


if __name__ == "__main__":
    main()
