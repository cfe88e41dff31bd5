"""Cost of continuous time (issue 27 target: a fit on dates <= 1.5 x the session-number fit of
the same data): the whole API fit (build, compile-cache lookup, sampling, post-hoc draws) of
M-size data (240 patients x 15 sessions, 24 therapists, sessions 1-21 days apart) in
continuous time and with session numbers, same draws, same process, after one warm-up fit
of each (so the compiled kernels come from the cache, as in routine use).

Usage: python benchmarks/continuous_time_cost.py [--draws 1000] [--tune 1000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayes_alliance.data.readers import sessions_from_dates
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference.fit import fit
from bayes_alliance.sim.continuous import simulate_dated
from bayes_alliance.spec.model_spec import ModelSpec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--patients", type=int, default=240)
    a = ap.parse_args()
    df, _ = simulate_dated(seed=7, n_patients=a.patients, n_sessions=15, n_therapists=24)
    dated = sessions_from_dates(df, patient="patient", date="date", session="session", elapsed="t")
    roles = dict(patient="patient", session="session", predictor="alliance", outcome="symptoms")
    timed = SessionData.from_frame(dated, therapist="therapist", time="t", **roles)
    plain = SessionData.from_frame(dated, therapist="therapist", **roles)
    runs = {
        "continuous": (timed, ModelSpec(time_model="continuous")),
        "sessions": (plain, ModelSpec()),
    }
    for data, spec in runs.values():  # warm-up: compile into the cache
        fit(data, spec, draws=20, tune=20, chains=2, random_seed=1, progressbar=False)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(a.repeats):
        for name, (data, spec) in runs.items():
            t0 = time.perf_counter()
            res = fit(
                data, spec, draws=a.draws, tune=a.tune, chains=2, random_seed=r, progressbar=False
            )
            times[name].append(time.perf_counter() - t0)
            print(f"{name} repeat {r}: {times[name][-1]:.1f} s; converged {res.convergence.ok}")
    c, s = np.median(times["continuous"]), np.median(times["sessions"])
    print(f"median continuous {c:.1f} s, sessions {s:.1f} s, ratio {c / s:.2f}")


if __name__ == "__main__":
    main()
