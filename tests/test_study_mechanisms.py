"""Studies of the mechanism models (``simulator = "mechanisms"``): a two-replication study of one
series runs on Dask, resumes exactly the task whose file is gone and names the truth of the
study file; every design's truths are the simulator's generating values (checked by hand, by
Monte Carlo over random lag matrices and by regression on simulated traits); a study file with
an unknown design, an effect without a true value or a method of the wrong kind is refused
naming the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.sim.mechanisms import simulate_mechanisms
from bayes_alliance.study.mechanism_truth import true_effects
from bayes_alliance.study.report import write_study_report
from bayes_alliance.study.runner import run_study, task_path
from bayes_alliance.study.spec import load_study, parse_study
from bayes_alliance.study.summary import read_results, summarise_results

# One series alone with a random autoregression; its true values (0.3, 0.1, 1.2, 0.8) are
# the ones the rows must carry.
SINGLE = """
[study]
name = "tiny_mechanisms"
simulator = "mechanisms"
seed = 11
replications = 2
ci_prob = 0.9
parameters = [
    "predictor_autoregression",
    "sd_predictor_autoregression_patient",
    "innovation_sd_predictor",
    "sd_patient_predictor",
]

[simulate]
design = "single"
patients_per_therapist = 12
n_sessions = 6
lag = [[0.3]]
path_sd = [0.1]
innovation_sd = 1.2
trait_sd = 0.8

[[methods]]
name = "k_series"
kind = "mechanisms"
sampler = { draws = 40, tune = 40, chains = 2 }
"""
SINGLE_TRUTH = {
    "predictor_autoregression": 0.3,
    "sd_predictor_autoregression_patient": 0.1,
    "innovation_sd_predictor": 1.2,
    "sd_patient_predictor": 0.8,
}


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["condition", "replication", "method", "parameter"]
    return df.drop(columns="seconds").sort_values(keys).reset_index(drop=True)


def test_a_mechanism_study_runs_resumes_one_task_and_names_the_truth(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(SINGLE)
    study = load_study(path)
    out = tmp_path / "run"
    assert run_study(study, out, workers=1, progress=False) == 2
    first = read_results(out)
    assert len(first) == 2 * len(SINGLE_TRUTH)
    assert (first["error"] == "").all(), first["error"].tolist()  # every row a fitted effect
    assert np.isfinite(first[["estimate", "sd", "ci_low", "ci_high"]]).all(axis=None)
    for _, row in first.iterrows():
        assert row["truth"] == pytest.approx(SINGLE_TRUTH[row["parameter"]], abs=1e-12)
        assert row["ci_low"] <= row["estimate"] <= row["ci_high"]
    # The two replications are different data sets.
    est = first.pivot(index="parameter", columns="replication", values="estimate")
    assert (est[0] != est[1]).all()

    gone = task_path(out, "c01", 1, "k_series")
    kept = task_path(out, "c01", 0, "k_series")
    kept_time = kept.stat().st_mtime_ns
    gone.unlink()
    rerun: list[tuple[str, int, str]] = []
    done = run_study(study, out, workers=1, progress=False, on_result=lambda t: rerun.append(t.key))
    assert done == 1
    assert rerun == [("c01", 1, "k_series")]
    assert kept.stat().st_mtime_ns == kept_time
    pd.testing.assert_frame_equal(_sorted(read_results(out)), _sorted(first))

    summary = summarise_results(first)
    assert set(summary["parameter"]) == set(SINGLE_TRUTH)
    assert (summary["n"] == 2).all()
    bias = summary.set_index("parameter")["bias"]
    mean = first.groupby("parameter")["estimate"].mean()
    for name, truth in SINGLE_TRUTH.items():
        assert bias[name] == pytest.approx(mean[name] - truth)
    page = write_study_report(out).read_text()
    for name in SINGLE_TRUTH:  # one table per effect
        assert re.search(rf"<caption>Table \d\. {name}</caption>", page), name
    assert "2 tasks done (0 failed) in 1 of 1 conditions" in page


# --- truths from the generating values ------------------------------------------------------

LAG4 = np.array(
    [
        [0.3, 0.1, 0.0, 0.0],
        [0.1, 0.3, 0.0, 0.0],
        [0.25, 0.15, 0.3, 0.0],
        [0.1, 0.05, 0.35, 0.3],
    ]
)


def _monte_carlo_square(lag, paths, cov, to, source, n=400_000, seed=1):
    """E[((Phi + D)(Phi + D))[to, source]] by drawing the random entries: mean and its SE."""
    rng = np.random.default_rng(seed)
    d = rng.multivariate_normal(np.zeros(len(paths)), cov, size=n)
    phi = np.broadcast_to(lag, (n, *lag.shape)).copy()
    for r, (t, s) in enumerate(paths):
        phi[:, t, s] += d[:, r]
    val = np.einsum("nj,nj->n", phi[:, to, :], phi[:, :, source])
    return val.mean(), val.std() / np.sqrt(n)


def test_mediator_with_two_informants_truths_by_hand_and_monte_carlo() -> None:
    _, sim = simulate_mechanisms(
        seed=1,
        design="mediation_informants",
        patients_per_therapist=5,
        n_sessions=4,
        lag=LAG4,
        path_sd=(0.1, 0.2, 0.3),
        path_corr=0.4,
        trait_corr=0.3,
    )
    t = true_effects(sim, therapists=False)
    # x = alliance, x2 = alliance_therapist, m = mediator, y = symptoms; paths a1, a2, b.
    cov_a1_b, cov_a2_b = 0.1 * 0.3 * 0.4, 0.2 * 0.3 * 0.4
    assert t["effect_on_mediator"] == 0.25 and t["effect_on_mediator_second"] == 0.15
    assert t["mediator_effect"] == 0.35
    assert t["indirect_effect_within"] == pytest.approx(0.25 * 0.35 + cov_a1_b)
    assert t["indirect_effect_within_second"] == pytest.approx(0.15 * 0.35 + cov_a2_b)
    assert t["indirect_effect_within_difference"] == pytest.approx(
        0.25 * 0.35 + cov_a1_b - 0.15 * 0.35 - cov_a2_b
    )
    assert t["direct_path_within"] == 0.1 and t["direct_path_within_second"] == 0.05
    assert t["sd_effect_on_mediator_patient"] == pytest.approx(0.1)
    assert t["sd_effect_on_mediator_second_patient"] == pytest.approx(0.2)
    assert t["sd_mediator_effect_patient"] == pytest.approx(0.3)
    assert t["trait_corr_informants_patient"] == pytest.approx(0.3)
    assert t["state_effect"] == 0.1 and t["state_effect_second"] == 0.05
    paths = ((2, 0), (2, 1), (3, 2))
    for x, suffix in ((0, ""), (1, "_second")):
        mc, se = _monte_carlo_square(LAG4, paths, sim.path_cov, 3, x)
        assert abs(t[f"total_effect_within{suffix}"] - mc) < 4 * se, (suffix, mc, se)
        indirect = t[f"indirect_effect_within{suffix}"]
        assert t[f"direct_effect_within{suffix}"] == pytest.approx(mc - indirect, abs=4 * se)
    assert "end_trait_effect_patient" not in t and "trait_effect_therapist" not in t


def test_three_level_end_outcome_and_single_series_truths_are_their_settings() -> None:
    _, sim = simulate_mechanisms(
        seed=2,
        design="mediation",
        n_therapists=4,
        patients_per_therapist=3,
        n_sessions=4,
        path_sd=(0.15, 0.2),
        path_corr=-0.5,
        end_effects=(-0.5, 2.0),
        end_therapist_effect=-1.5,
        change_sd=0.1,
    )
    t = true_effects(sim, therapists=True)
    assert t["indirect_effect_within"] == pytest.approx(0.3 * -0.3 + 0.15 * 0.2 * -0.5)
    assert t["end_trait_effect_patient"] == -0.5 and t["end_trait_effect_therapist"] == -1.5
    assert t["end_change_effect"] == 2.0
    assert t["end_change_effect_per_sd"] == pytest.approx(0.2)
    # the therapist parts are drawn independently across series: no trait regression there
    assert t["trait_effect_therapist"] == 0.0 and t["trait_effect_patient"] == -0.4

    _, one = simulate_mechanisms(
        seed=4, design="single", n_therapists=3, patients_per_therapist=2, lag=[[0.2]],
        path_sd=(0.25,), innovation_sd=0.7, trait_sd=1.3, therapist_sd=0.4,
    )  # fmt: skip
    t = true_effects(one, therapists=True)
    assert t == pytest.approx(
        {
            "predictor_autoregression": 0.2,
            "sd_predictor_autoregression_patient": 0.25,
            "innovation_sd_predictor": 0.7,
            "sd_patient_predictor": 1.3,
            "sd_therapist_predictor": 0.4,
        }
    )


def test_baseline_truths_match_regressions_on_the_simulated_traits() -> None:
    """Between-level mediation z -> traits: the truths (by hand from the settings) against
    least squares of the simulated traits and end outcome on z over 20,000 patients."""
    a, g_m, c_y, c_end, g_p = 0.5, 0.3, 0.2, 0.4, -0.6
    df, sim = simulate_mechanisms(
        seed=4,
        design="mediation",
        patients_per_therapist=20_000,
        n_sessions=3,
        end_effects=(g_p, 0.0),
        trait_effects=(-0.4, 0.25),
        baseline_effects=(a, g_m, c_y),
        baseline_end=c_end,
    )
    t = true_effects(sim, therapists=False)
    assert t["baseline_effect_predictor"] == a and t["baseline_effect_mediator"] == g_m
    assert t["indirect_effect_between"] == pytest.approx(a * -0.4)
    assert t["indirect_effect_between_mediator"] == pytest.approx(g_m * 0.25)
    assert t["direct_effect_between"] == c_y
    assert t["indirect_effect_between_end"] == pytest.approx(a * g_p)
    first = df.groupby("patient", sort=False).first()  # in the simulated order
    z = first["baseline"].to_numpy()
    design = np.column_stack([np.ones_like(z), z])

    def slope(values: np.ndarray) -> tuple[float, float]:
        coef, res, *_ = np.linalg.lstsq(design, values, rcond=None)
        s2 = res[0] / (len(z) - 2)
        return coef[1], np.sqrt(s2 / np.sum((z - z.mean()) ** 2))

    for column, name in ((0, "baseline_effect_predictor"), (2, "total_effect_between")):
        b, se = slope(sim.traits[:, column])
        assert abs(b - t[name]) < 4 * se, (name, b, se, t[name])
    b, se = slope(first["post_symptoms"].to_numpy())
    assert abs(b - t["total_effect_between_end"]) < 4 * se, (b, se)


# --- errors naming the key ------------------------------------------------------------------


def _raw(**change: object) -> dict:
    raw = tomllib.loads(SINGLE)
    for where, value in change.items():
        table, key = where.split("__")
        raw[table][key] = value
    return raw


def test_unknown_design_and_missing_truth_are_named() -> None:
    with pytest.raises(ValueError, match=r"design 'singel'.*Did you mean 'single'"):
        parse_study(_raw(simulate__design="singel"))
    raw = _raw()
    del raw["simulate"]["design"]
    with pytest.raises(ValueError, match="names its design"):
        parse_study(raw)
    raw = _raw(study__parameters=["predictor_autoregression", "end_trait_effect_patient"])
    with pytest.raises(ValueError, match=r"\['end_trait_effect_patient'\]: no condition has a"):
        parse_study(raw)
    with pytest.raises(ValueError, match=r"'indirect_efect_within'.*'indirect_effect_within'"):
        parse_study(_raw(study__parameters=["indirect_efect_within"]))
    with pytest.raises(ValueError, match=r"condition c01.*path_sd needs 1 values"):
        parse_study(_raw(simulate__path_sd=[0.1, 0.1]))
    with pytest.raises(ValueError, match=r"n_session.*Did you mean 'n_sessions'"):
        parse_study(_raw(simulate__n_session=5))
    with pytest.raises(ValueError, match=r"simulator 'mechanism'.*Did you mean 'mechanisms'"):
        parse_study(_raw(study__simulator="mechanism"))


def test_methods_must_fit_the_simulator_and_their_model_keys_are_checked() -> None:
    raw = _raw()
    raw["methods"][0]["kind"] = "joint"
    with pytest.raises(ValueError, match="kind 'joint' does not fit the study's simulator"):
        parse_study(raw)
    raw = _raw()
    raw["methods"][0]["model"] = {"random_lag": ["predictor_autoregression"]}
    with pytest.raises(ValueError, match=r"random_lag.*Did you mean 'random_lags'"):
        parse_study(raw)


def test_conditions_listed_one_by_one_and_the_shipped_recovery_study() -> None:
    raw = _raw()
    design = raw["simulate"].pop("design")
    raw["conditions"] = [{"design": design}, {"design": "two_series", "trait_corr": 0.2}]
    raw["simulate"] = {k: v for k, v in raw["simulate"].items() if k not in ("lag", "path_sd")}
    raw["study"]["parameters"] = ["predictor_autoregression", "state_effect"]
    study = parse_study(raw)
    assert [c.varied for c in study.conditions()] == raw["conditions"]
    raw["conditions"][1]["patients_per_therapist"] = 5
    with pytest.raises(ValueError, match=r"conditions #2.*patients_per_therapist.*\[simulate\]"):
        parse_study(raw)

    shipped = load_study("mechanism_recovery")
    assert shipped.replications == 12
    assert shipped.methods[0].sampler.draws == 800
    designs = [c.varied["design"] for c in shipped.conditions()]
    assert designs == ["single", "mediation_informants", "mediation"]
