"""Cost of the per-patient marginal log densities a fit writes (``log_likelihood.by_patient``,
:func:`bayes_alliance.analysis.patient_density.patient_loglik`) at registry size.

    nice -n 10 python benchmarks/patient_density_cost.py [--draws 2000] [--cases L L-gaps]
        [--reference 40]

Each case simulates data (the sizes of ``cli_process.py``) and a posterior of ``--draws``
draws around the simulator's truth (jittered; therapist deviations drawn), then times
``patient_loglik`` on all draws; ``--reference N`` also times the earlier per-draw path
(``_reference_loglik``, numpy per draw) on N draws and checks both agree on them to 1e-9.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from cli_process import CASES as CLI_CASES

# cli_process.py's data sets; L-gaps-me is L-gaps fitted with measurement error
CASES = {k: CLI_CASES[k] for k in ("L", "L-gaps", "XL-gaps")}
CASES["L-gaps-me"] = CLI_CASES["L-gaps"]


def posterior(data, spec, n_draws, rng):
    """Draws (1, n_draws, ...) of every parameter the density reads."""
    point = {
        "sd_patient_predictor": 0.6,
        "sd_patient_outcome_total": 0.6,
        "trait_corr_patient": 0.3,
        "sd_therapist_predictor": 0.2,
        "sd_therapist_outcome_total": 0.2,
        "trait_corr_therapist": 0.2,
        "intercept_predictor": 0.0,
        "intercept_outcome": 0.0,
        "predictor_autoregression": 0.3,
        "reverse_state_effect": 0.05,
        "outcome_autoregression": 0.3,
        "state_effect": -0.2,
        "innovation_sd_predictor": 0.7,
        "innovation_sd_outcome": 0.7,
        "innovation_corr": 0.1,
        "measurement_error_sd_predictor": 0.3,
        "measurement_error_sd_outcome": 0.3,
    }
    names = spec.prior_names()
    post = {
        k: val * (1 + 0.05 * rng.uniform(-1, 1, (1, n_draws)))
        for k, val in point.items()
        if k in names
    }
    # a fit stores each level's regression form beside its covariance (deterministics)
    for level in ("patient", "therapist"):
        sx, sy = post[f"sd_{level}_predictor"], post[f"sd_{level}_outcome_total"]
        r = post[f"trait_corr_{level}"]
        post[f"trait_effect_{level}"] = r * sy / sx
        post[f"sd_{level}_outcome"] = sy * np.sqrt(1 - r**2)
    n_t = len(data.therapists)
    post["therapist_dev_predictor_raw"] = rng.normal(size=(1, n_draws, n_t))
    post["therapist_dev_outcome_raw"] = rng.normal(size=(1, n_draws, n_t))
    return post


def main() -> None:
    from bayes_alliance import SessionData, simulate
    from bayes_alliance.analysis import patient_density
    from bayes_alliance.spec.model_spec import ModelSpec

    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--cases", nargs="+", default=["L", "L-gaps"])
    parser.add_argument("--reference", type=int, default=0)
    args = parser.parse_args()
    for case in args.cases:
        df, _ = simulate(seed=1, **CASES[case])
        data = SessionData.from_frame(
            df,
            patient="patient",
            session="session",
            predictor="alliance",
            outcome="symptoms",
            therapist="therapist",
        )
        spec = ModelSpec(measurement_error=case.endswith("-me"))
        post = posterior(data, spec, args.draws, np.random.default_rng(2))
        patient_density.patient_loglik({k: v[:, :2] for k, v in post.items()}, data, spec)
        start = time.perf_counter()
        ours = patient_density.patient_loglik(post, data, spec)
        now = time.perf_counter() - start
        line = f"{case}: {data.n_patients} x {data.n_sessions}, {args.draws} draws: {now:.2f} s"
        if args.reference:
            few = {k: v[:, : args.reference] for k, v in post.items()}
            start = time.perf_counter()
            ref = patient_density._reference_loglik(few, data, spec)
            before = (time.perf_counter() - start) * args.draws / args.reference
            gap = np.abs(ref - ours[:, : args.reference]).max()
            line += f"; per-draw numpy path: {before:.2f} s (from {args.reference}), max |diff| {gap:.1e}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
