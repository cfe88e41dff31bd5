"""Recovery of between-level mediation over several simulated data sets (slow: `make test-slow`).

Each seed draws 20 therapists x 8 patients x 10 complete sessions with a = 0.4 (baseline ->
trait of x), b = trait_effect_patient = -0.3 and c' = -0.2 (so ab = -0.12, total -0.32), and
refits one compiled model. Targets: the truth of a, b, c' and ab inside the 90% equal-tailed
interval in at least 6 of 8 seeds each (nominal: 7.2; 6 or more has probability 0.96 when the
intervals are calibrated), and the mean error of the posterior means over the seeds within
0.05 for a and c' and 0.08 for b and ab (their posterior SDs at this size are about 0.05-0.07,
0.1 and 0.04: the bound is about one posterior SD, over eight seeds a bias of half an SD).
A second test fits one data set with integrated and with sampled traits: the same posterior of
the paths and of the whole latent means.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.core import vocab as v
from bayes_alliance.spec.model_spec import ModelSpec

pytestmark = pytest.mark.slow

TRUE = {"a": 0.4, "b": -0.3, "c_prime": -0.2}
SEEDS = range(101, 109)
TRAITS = ("integrated", "sampled")


def _data(seed: int) -> SessionData:
    df, truth = simulate(
        seed=seed,
        n_therapists=20,
        patients_per_therapist=8,
        sessions=10,
        baseline_effect_predictor=TRUE["a"],
        baseline_effect_outcome=TRUE["c_prime"],
        trait_effect_patient=TRUE["b"],
    )
    assert truth.mediation["indirect_effect_between"] == pytest.approx(TRUE["a"] * TRUE["b"])
    return SessionData.from_frame(
        df,
        patient="patient",
        therapist="therapist",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        covariates=["baseline"],
    )


def test_mediation_paths_recovered_over_seeds():
    from bayes_alliance.inference.compiled import compile_model

    spec = ModelSpec(baseline=("baseline",))
    truth = {**TRUE, "ab": TRUE["a"] * TRUE["b"]}
    covered = dict.fromkeys(truth, 0)
    errors: dict[str, list[float]] = {k: [] for k in truth}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = compile_model(_data(SEEDS[0]), spec)
        for seed in SEEDS:
            r = cm.fit(_data(seed), random_seed=seed, draws=500, tune=500, complete=False)
            a = r.draws(v.BASELINE_EFFECT_PREDICTOR)[..., 0].ravel()
            b = r.draws(v.TRAIT_EFFECT_PATIENT).ravel()
            c = r.draws(v.BASELINE_EFFECT_OUTCOME)[..., 0].ravel()
            for name, d in (("a", a), ("b", b), ("c_prime", c), ("ab", a * b)):
                lo, hi = np.quantile(d, [0.05, 0.95])
                covered[name] += int(lo <= truth[name] <= hi)
                errors[name].append(float(d.mean()) - truth[name])
    bias = {k: float(np.mean(e)) for k, e in errors.items()}
    print("covered (of 8):", covered, "mean error:", bias)
    for name in truth:
        assert covered[name] >= 6, (name, covered, bias)
    for name, bound in (("a", 0.05), ("c_prime", 0.05), ("b", 0.08), ("ab", 0.08)):
        assert abs(bias[name]) < bound, (name, bias)


def test_integrated_and_sampled_traits_agree_with_a_baseline():
    """The two ways of estimating the latent means give one posterior: the paths, the drawn
    (integrated) and sampled whole latent means, so the shift is counted once in both."""
    from bayes_alliance.inference.fit import fit

    df, _ = simulate(
        seed=5,
        n_therapists=15,
        patients_per_therapist=6,
        sessions=8,
        p_missing_value=0.05,
        baseline_effect_predictor=TRUE["a"],
        baseline_effect_outcome=TRUE["c_prime"],
    )
    data = SessionData.from_frame(
        df,
        patient="patient",
        therapist="therapist",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        covariates=["baseline"],
    )
    kw = dict(draws=600, tune=600, random_seed=7, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [fit(data, ModelSpec(baseline=("baseline",), traits=t), **kw) for t in TRAITS]
    a, b = (f.summary() for f in fits)
    for name in ("baseline_effect_predictor[baseline]", "baseline_effect_outcome[baseline]"):
        se = a.loc[name, "sd"] * np.sqrt(1 / a.loc[name, "ess_bulk"] + 1 / b.loc[name, "ess_bulk"])
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < 4 * se, name
        assert a.loc[name, "sd"] == pytest.approx(b.loc[name, "sd"], rel=0.2), name
    for which in ("trait_predictor", "trait_outcome"):
        ti, ts = (f.draws(which).mean(axis=(0, 1)) for f in fits)
        sd = fits[1].draws(which).std(axis=(0, 1))
        assert np.max(np.abs(ti - ts) / sd) < 0.35, which


# Therapist level: a therapist characteristic h_j (``therapist_baseline``) with a_T = 0.4,
# c'_T = -0.2 and b_T = trait_effect_therapist = -0.5 (a_T b_T = -0.2, total -0.4). The residual
# therapist SD of x is 0.5 (the simulator's default 0.2 leaves b_T, and with it the split of the
# total into c'_T and a_T b_T, poorly identified by 40 therapists: posterior SDs of c'_T and
# a_T b_T were then about 0.26 each, strongly negatively correlated, while a_T's was 0.05).
TRUE_T = {"a": 0.4, "b": -0.5, "c_prime": -0.2}
SEEDS_T = range(201, 207)


def _therapist_data(seed: int) -> SessionData:
    df, truth = simulate(
        seed=seed,
        n_therapists=40,
        patients_per_therapist=5,
        sessions=8,
        therapist_baseline_effect_predictor=TRUE_T["a"],
        therapist_baseline_effect_outcome=TRUE_T["c_prime"],
        trait_effect_therapist=TRUE_T["b"],
        sd_therapist_predictor=0.5,
        sd_therapist_outcome=0.2,
    )
    assert truth.mediation_therapist["indirect_effect_between_therapist"] == pytest.approx(
        TRUE_T["a"] * TRUE_T["b"]
    )
    return SessionData.from_frame(
        df,
        patient="patient",
        therapist="therapist",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        covariates=["therapist_baseline"],
    )


def test_therapist_mediation_paths_recovered_over_seeds():
    """6 seeds of 40 therapists x 5 patients x 8 complete sessions, default baseline level
    (auto resolves to therapist), one compiled model. Targets: the truth of a_T, c'_T, a_T b_T
    and the total c'_T + a_T b_T inside the 90% equal-tailed interval in at least 4 of 6 seeds
    each (probability 0.98 when calibrated), and the mean error of the posterior means over the
    seeds within about one posterior SD (0.10 for a_T, 0.07 for the others; posterior SDs at
    this size about 0.10, 0.07, 0.07 and 0.07, so the bound is about 2.5 standard errors of a
    mean over 6 seeds). Measured (2 x 500 draws per seed): 6 of 6 covered for each; mean
    errors -0.008, 0.006, -0.000 and 0.005."""
    from bayes_alliance.inference.compiled import compile_model

    spec = ModelSpec(baseline=("therapist_baseline",))
    ab = TRUE_T["a"] * TRUE_T["b"]
    truth = {
        "a": TRUE_T["a"],
        "c_prime": TRUE_T["c_prime"],
        "ab": ab,
        "total": TRUE_T["c_prime"] + ab,
    }
    covered = dict.fromkeys(truth, 0)
    errors: dict[str, list[float]] = {k: [] for k in truth}
    sds: dict[str, list[float]] = {k: [] for k in truth}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = compile_model(_therapist_data(SEEDS_T[0]), spec)
        assert cm.spec.baseline_level == "therapist"
        for seed in SEEDS_T:
            r = cm.fit(_therapist_data(seed), random_seed=seed, draws=500, tune=500, complete=False)
            assert r.spec.baseline_level == "therapist"
            a = r.draws(v.BASELINE_EFFECT_PREDICTOR)[..., 0].ravel()
            b = r.draws(v.TRAIT_EFFECT_THERAPIST).ravel()
            c = r.draws(v.BASELINE_EFFECT_OUTCOME)[..., 0].ravel()
            for name, d in (("a", a), ("c_prime", c), ("ab", a * b), ("total", c + a * b)):
                lo, hi = np.quantile(d, [0.05, 0.95])
                covered[name] += int(lo <= truth[name] <= hi)
                errors[name].append(float(d.mean()) - truth[name])
                sds[name].append(float(d.std()))
    bias = {k: float(np.mean(e)) for k, e in errors.items()}
    sd = {k: float(np.mean(s)) for k, s in sds.items()}
    print("therapist level: covered (of 6):", covered, "mean error:", bias, "mean sd:", sd)
    for name in truth:
        assert covered[name] >= 4, (name, covered, bias)
    for name, bound in (("a", 0.10), ("c_prime", 0.07), ("ab", 0.07), ("total", 0.07)):
        assert abs(bias[name]) < bound, (name, bias)
