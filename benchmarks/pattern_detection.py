"""Detection rates of the state-pattern rules (bayes_alliance.analysis.patterns) on planted patterns.

Usage::

    python benchmarks/pattern_detection.py [--patients 200] [--draws 200] [--sessions 15]
        [--sizes 3 4 5] [--seed 1] [--fit]

For every planted pattern (none, linear strengthening / weakening, U, rupture-repair, sudden
gain; :func:`bayes_alliance.sim.patterns.planted_series`: a stationary AR(1) state with
autoregression 0.3 and innovation SD 1 plus the pattern, of the given size in innovation SDs)
it draws ``--patients`` patients and, per patient, ``--draws`` posterior-like draws of the
states: the true states plus a common shift per draw (the latent mean's posterior SD, stationary
SD / sqrt(sessions)) and independent cell noise of 0.3 SD (what imputed cells or an estimated
trend add), with the unit (innovation SD) drawn per draw as exp(N(0, 0.1)). A patient is
classified as showing a pattern when its posterior probability is at least 0.5. The table gives
the share of patients of each planted pattern classified as each pattern: the diagonal is the
true-positive rate, the rest false positives. Rupture-repair and sudden gains are also scored at
their sessions: "at sessions" requires a session with probability >= 0.5 among the planted ones
(for a gain, within one session of the planted one).

``--fit`` adds one small real fit: ``simulate`` (12 therapists x 5 patients, 15 sessions),
30 patients left as drawn and each pattern planted into the alliance of six others (size 4
innovation SDs of alliance, on top of the simulated AR(1) states), the default model (500
draws, 2 chains), and :func:`patterns_table` with the model's and the patient's own unit.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from bayes_alliance.analysis import pattern_table as ptab
from bayes_alliance.analysis import patterns as pat
from bayes_alliance.sim import patterns as sim

PLANTED = ("none", *pat.PATTERNS)


def markdown(df: pd.DataFrame) -> str:
    head = [df.index.name or "", *map(str, df.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for idx, row in df.iterrows():
        cells = ["" if pd.isna(v) else f"{v:.2f}" for v in row]
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


def posterior_like(w: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    n = w.shape[-1]
    shift = rng.normal(0, 1 / np.sqrt(1 - 0.3**2) / np.sqrt(n), (draws, 1))
    return w[None, :] + shift + rng.normal(0, 0.3, (draws, n))


def rates(
    size: float, patients: int, draws: int, sessions: int, seed: int, scale_mode: str
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for planted in PLANTED:
        series = [sim.planted_series(planted, sessions, rng, size=size) for _ in range(patients)]
        w = np.stack([posterior_like(s, draws, rng) for s, _ in series])  # (patients, draws, T)
        truth = np.stack([m for _, m in series])
        scale = np.exp(rng.normal(0, 0.1, w.shape[:-1])) if scale_mode == "model" else None
        pr = pat.pattern_probabilities(w, np.arange(1, sessions + 1), scale)
        row: dict[str, object] = {"planted": planted}
        for p in pat.PATTERNS:
            row[p] = float((pr[p] >= 0.5).mean())
        if planted == "rupture_repair":
            hit = ((pr["rupture_sessions"] >= 0.5) & truth).any(-1)
            row["at sessions"] = float(hit.mean())
        elif planted == "sudden_gain":
            near = truth | np.roll(truth, 1, -1) | np.roll(truth, -1, -1)
            hit = ((pr["sudden_gain_sessions"] >= 0.5) & near).any(-1)
            row["at sessions"] = float(hit.mean())
        else:
            row["at sessions"] = np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("planted")


def small_fit(seed: int) -> pd.DataFrame:
    import warnings

    from bayes_alliance import SessionData, simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.inference.fit import fit

    df, truth = simulate(seed=seed, n_therapists=12, patients_per_therapist=5, sessions=15)
    df = df.sort_values(["patient", "session"]).reset_index(drop=True)
    sd = truth.params.innovation_sd_predictor
    rng = np.random.default_rng(seed)
    ids = sorted(df["patient"].unique())
    # half the patients without a pattern, then six of each pattern
    plan = {pid: "none" if i < 30 else pat.PATTERNS[i % 5] for i, pid in enumerate(ids)}
    for pid, planted in plan.items():
        rows = df["patient"] == pid
        shape, _ = sim.planted_shape(planted, int(rows.sum()), rng, size=4.0)
        df.loc[rows, EXAMPLE_ROLES["predictor"]] += sd * shape  # on top of the AR(1) states
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        result = fit(data, draws=500, tune=500, chains=2, random_seed=seed, progressbar=False)
    sd_hat = float(result.idata.posterior["innovation_sd_predictor"].mean())
    print(f"\nsmall real fit: innovation SD of alliance {sd_hat:.3f} (true {sd})")
    tables = []
    for unit in ("model", "patient"):
        table = ptab.patterns_table(result, scale=unit, calibration="fixed")
        table["planted"] = table["patient"].map(plan)
        table["unit"] = unit
        tables.append(table)
    return pd.concat(tables)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--sessions", type=int, default=15)
    ap.add_argument("--sizes", type=float, nargs="+", default=[3.0, 4.0, 5.0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", choices=["model", "patient"], default="model")
    ap.add_argument("--fit", action="store_true")
    args = ap.parse_args()
    for size in args.sizes:
        t0 = time.perf_counter()
        tab = rates(size, args.patients, args.draws, args.sessions, args.seed, args.scale)
        print(
            f"\nplanted size {size:g} innovation SDs, {args.sessions} sessions, "
            f"{args.patients} patients per row, {args.draws} draws, unit: {args.scale} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        print(markdown(tab))
    if args.fit:
        table = small_fit(args.seed)
        cols = ["p_strengthening", "p_weakening", "p_u_shape", "p_rupture_repair", "p_sudden_gain"]
        for unit, part in table.groupby("unit"):
            print(f"\nsmall real fit, unit {unit}: share of patients with probability >= 0.5")
            print(markdown(part.groupby("planted")[cols].agg(lambda p: (p >= 0.5).mean())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
