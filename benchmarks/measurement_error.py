"""The measurement-error term on simulated data: bias, coverage, width, mixing and time, with
and without the term, to choose its default (docs/methods.md) and to show what it costs.

    python benchmarks/measurement_error.py --seeds 4 --sessions 12 20 --reliability 0.6 1.0

For every (sessions, reliability) condition and seed the simulator draws 15 therapists x 6
patients (autoregressions .5, state effect -.3; ``reliability`` sets both error SDs from the
stationary state variance), and the joint model is fitted with and without the error term
(2 chains x 1000 draws after 1000 tuning steps). Printed per condition and arm: the mean error
and the share of 90% HDIs that hold the truth for the two autoregressions and the state effect,
their mean interval width, the smallest bulk ESS over all parameters, the share of fits whose
convergence check passed and the mean sampling time. Seeds differ between conditions of
different length (a seed shared by two lengths shares its first sessions' draws). The study
``models/studies/measurement_error.toml`` is the full version (100 replications) for a cluster.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.fit import fit
from bayes_alliance.spec.model_spec import ModelSpec

LAGS = ("predictor_autoregression", "outcome_autoregression", "state_effect")


def one(sessions: int, reliability: float, seed: int) -> dict[bool, dict[str, float]]:
    df, truth = simulate(
        seed=seed,
        n_therapists=15,
        patients_per_therapist=6,
        sessions=sessions,
        predictor_autoregression=0.5,
        outcome_autoregression=0.5,
        state_effect=-0.3,
        reliability=reliability,
    )
    data = SessionData.from_frame(df, **EXAMPLE_ROLES)
    out = {}
    for me in (False, True):
        t0 = time.perf_counter()
        r = fit(data, ModelSpec(measurement_error=me), random_seed=seed, progressbar=False)
        s = r.summary(ci_prob=0.9)
        row: dict[str, float] = {"seconds": time.perf_counter() - t0}
        for n in LAGS:
            true = getattr(truth.params, n)
            row[f"err_{n}"] = s.loc[n, "mean"] - true
            row[f"in_{n}"] = float(s.loc[n, "ci_low"] <= true <= s.loc[n, "ci_high"])
            row[f"width_{n}"] = s.loc[n, "ci_high"] - s.loc[n, "ci_low"]
        row["min_ess"] = float(s["ess_bulk"].min())
        row["converged"] = float(r.convergence.ok)
        out[me] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--sessions", type=int, nargs="+", default=[12, 20])
    ap.add_argument("--reliability", type=float, nargs="+", default=[0.6, 1.0])
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    for k, sessions in enumerate(args.sessions):
        for reliability in args.reliability:
            rows: dict[bool, list[dict[str, float]]] = {False: [], True: []}
            for seed in range(1 + 100 * k, 1 + 100 * k + args.seeds):
                for me, row in one(sessions, reliability, seed).items():
                    rows[me].append(row)
            for me in (False, True):
                mean = {key: np.mean([r[key] for r in rows[me]]) for key in rows[me][0]}
                lags = "  ".join(
                    f"{n.split('_')[0][:4]}: err {mean[f'err_{n}']:+.3f} "
                    f"cover {mean[f'in_{n}']:.2f} width {mean[f'width_{n}']:.3f}"
                    for n in LAGS
                )
                print(
                    f"T={sessions} rel={reliability} error_term={me!s:5}  {lags}  "
                    f"min ESS {min(r['min_ess'] for r in rows[me]):.0f}  "
                    f"converged {mean['converged']:.2f}  {mean['seconds']:.0f} s/fit",
                    flush=True,
                )


if __name__ == "__main__":
    main()
