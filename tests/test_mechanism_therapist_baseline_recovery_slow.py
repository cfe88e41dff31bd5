"""Recovery of a therapist-level baseline's mediation in the integrated mechanism model (slow:
`make test-slow`).

Each seed draws two series with an end-of-treatment outcome from :func:`simulate_mechanisms`
(25 therapists of 4 patients, 8 sessions; independent therapist parts) and adds a therapist
characteristic w_j ~ N(0, 1) in the generating form: w_j moves the therapist part of the
predictor's mean by A, the outcome's therapist part regresses on the predictor's whole
therapist part with B_T and on w_j directly with C_Y, and the end outcome, which depends on the
predictor's therapist part through G_T, gains C_END w_j directly. The truths are these
generating numbers (A B_T, C_Y, A G_T, ...), never the package's formulas.

Small fits (2 chains x 300 draws after 300 tuning steps) over 3 seeds; every effect's 95%
interval should hold its truth: over 3 seeds x 7 effects at least 18 of 21 (Binomial(21, 0.95):
probability 0.98 when calibrated).

Record (2026-12-06, seeds 701-703, 2-core machine shared with other runs; 701 s in all, the
first seed 490 s with the compile): covered 19 of 21, r_hat at most 1.028. Missed: seed 702's
baseline_effect_predictor (truth 0.6, 95% [-0.04, 0.55]) and with it
indirect_effect_between_therapist_end (0.48, [-0.06, 0.38]). trait_effect_therapist's intervals
are wide (about [-0.8, 2.3] at two seeds): b_T rests on 25 therapists.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.fit import fit_mechanisms
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import simulate_mechanisms

pytestmark = pytest.mark.slow

SEEDS = (701, 702, 703)
A, B_T, C_Y = 0.6, 0.5, 0.3  # w -> therapist mean of x, of x -> of y, w -> of y directly
G_P, G_T, C_END = 0.5, 0.8, -0.4  # x's patient / therapist part -> end outcome, w -> end
FIT = dict(draws=300, tune=300, chains=2, progressbar=False)


def _draw(seed: int) -> SeriesData:
    df, truth = simulate_mechanisms(
        seed=seed, design="two_series", n_therapists=25, patients_per_therapist=4,
        n_sessions=8, therapist_sd=0.6, end_effects=(G_P, 0.0), end_therapist_effect=G_T,
    )  # fmt: skip
    rng = np.random.default_rng(seed + 20_000)
    tids = sorted(df.therapist.unique())
    w = dict(zip(tids, rng.normal(size=len(tids)), strict=True))
    code = {t: j for j, t in enumerate(tids)}
    wj = df.therapist.map(w).to_numpy()
    u_x = truth.therapist_parts[df.therapist.map(code).to_numpy(), 0]
    df["alliance"] += A * wj
    df["symptoms"] += B_T * u_x + (C_Y + B_T * A) * wj
    df["post_symptoms"] += (C_END + G_T * A) * wj
    df["w"] = wj
    return SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        therapist="therapist", end_outcome="post_symptoms", covariates=["w"],
    )  # fmt: skip


TRUTH = {
    "baseline_effect_predictor": A,
    "trait_effect_therapist": B_T,
    "indirect_effect_between_therapist": A * B_T,
    "direct_effect_between_therapist": C_Y,
    "total_effect_between_therapist": C_Y + A * B_T,
    "indirect_effect_between_therapist_end": A * G_T,
    "baseline_effect_end": C_END,
}


def test_a_therapist_baseline_mediation_is_recovered_over_seeds():
    spec = MechanismSpec(
        therapist_level=True, random_paths=(), trend=False, baseline=("w",),
        baseline_level="therapist",
    )  # fmt: skip
    covered, checks = 0, 0
    start = time.perf_counter()
    for seed in SEEDS:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit_mechanisms(_draw(seed), spec, random_seed=seed, **FIT)
            eff = res.effects(ci_prob=0.95)
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s")
        for name, truth in TRUTH.items():
            row = eff.loc[name]
            inside = bool(row["ci_low"] <= truth <= row["ci_high"])
            covered += inside
            checks += 1
            print(
                f"  {name}: truth {truth:+.3f}, mean {row['mean']:+.3f}, 95% "
                f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}], r_hat {row['r_hat']:.3f}"
                + ("" if inside else "  MISSED")
            )
            assert row["r_hat"] < 1.1, (seed, name, row)
    print(f"covered {covered} of {checks}; {time.perf_counter() - start:.0f} s in all")
    assert covered >= 18, (covered, checks)
