"""Cost of the mechanism models against the main model on the same data: microseconds per
log-density + gradient evaluation (numba, as nutpie runs it), and seconds and leapfrog steps
per draw of a short nutpie run.

Usage::

    python benchmarks/mechanism_cost.py [--draws 300] [--cases main2 k2 k2-sampled k3 ...]

Data: the shipped ``mediation_within.csv`` (20 therapists x 6 patients x 12 sessions, gaps,
an end-of-treatment outcome). Cases: ``main2`` the main model (alliance, symptoms, three
levels); ``k2`` the mechanism model of the same two series, integrated; ``k2-sampled`` the same
with sampled traits (the form before issue 26); ``k2-general`` ``k2`` through the general
k-series filter instead of its two-series fast path (``integrated.K2_FAST_PATH`` off); ``k3``
within mediation with the end outcome, integrated; ``k3-sampled`` the same, sampled;
``informants`` two informants (informants.csv), integrated, and ``informants-sampled``. Compare figures within one run: the machines are noisy
(the CPU time of the process moves least when other jobs share the cores).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "bayes_alliance" / "datasets"


def _model(case: str):
    from bayes_alliance.data.series_data import SeriesData
    from bayes_alliance.data.session_data import SessionData
    from bayes_alliance.mechanisms import integrated
    from bayes_alliance.mechanisms.model import build_mechanism_model
    from bayes_alliance.mechanisms.spec import MechanismSpec
    from bayes_alliance.model.build import build_model
    from bayes_alliance.spec.model_spec import ModelSpec

    traits = "sampled" if case.endswith("-sampled") else "integrated"
    base = case.removesuffix("-sampled")
    integrated.K2_FAST_PATH = base != "k2-general"
    base = base.removesuffix("-general")
    if base == "informants":
        df = pd.read_csv(DATA / "informants.csv")
        data = SeriesData.from_frame(
            df, patient="patient", session="session", predictor="alliance",
            outcome="symptoms", therapist="therapist", second_predictor="alliance_therapist",
        )  # fmt: skip
        return build_mechanism_model(data, MechanismSpec(therapist_level=True, traits=traits))
    df = pd.read_csv(DATA / "mediation_within.csv")
    if base == "main2":
        data = SessionData.from_frame(
            df, patient="patient", session="session", predictor="alliance",
            outcome="symptoms", therapist="therapist",
        )  # fmt: skip
        return build_model(data, ModelSpec(therapist_level=True, store_states=False))
    extra = {"mediator": "emotional_processing", "end_outcome": "post_symptoms"}
    data = SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        therapist="therapist", **(extra if base == "k3" else {}),
    )  # fmt: skip
    return build_mechanism_model(data, MechanismSpec(therapist_level=True, traits=traits))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", nargs="+", default=["main2", "k2", "k2-sampled", "k3", "k3-sampled"])
    ap.add_argument("--evals", type=int, default=300)
    ap.add_argument("--draws", type=int, default=300)
    args = ap.parse_args()
    import nutpie
    import pytensor

    warnings.simplefilter("ignore")
    print(
        "case, parameters, us per logp+grad (wall, best of 5), CPU us per logp+grad, "
        "s per draw, leapfrog steps per draw, compile s"
    )
    for case in args.cases:
        model = _model(case)
        logp = model.logp()
        outs = [logp, *pytensor.grad(logp, model.value_vars)]
        t0 = time.perf_counter()
        fn = pytensor.function(model.value_vars, outs, mode="NUMBA", on_unused_input="ignore")
        compile_s = time.perf_counter() - t0
        point = model.initial_point()
        x0 = [point[v.name] for v in model.value_vars]
        fn(*x0)
        # wall and CPU time, the best of five rounds: on a shared machine the process's own
        # CPU time and the best round move least with the other jobs
        walls, cpus = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.evals):
                fn(*x0)
            walls.append(1e6 * (time.perf_counter() - t0) / args.evals)
            cpus.append(1e6 * (time.process_time() - c0) / args.evals)
        per_eval, cpu_eval = min(walls), min(cpus)
        n_par = sum(int(np.size(point[v.name])) for v in model.value_vars)
        compiled = nutpie.compile_pymc_model(model)
        t0 = time.perf_counter()
        trace = nutpie.sample(
            compiled, draws=args.draws, tune=args.draws, chains=1, seed=1, progress_bar=False
        )
        per_draw = (time.perf_counter() - t0) / (2 * args.draws)
        steps = float(np.mean(trace.sample_stats["n_steps"].values))
        print(
            f"{case}, {n_par}, {per_eval:.0f}, {cpu_eval:.0f}, {per_draw * 1e3:.1f} ms, {steps:.1f}, "
            f"{compile_s:.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
