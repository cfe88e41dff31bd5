"""Every model option's likelihood against the dense joint Gaussian of each patient's series.

The reference builds each patient's completed series covariance with dense matrices
(:mod:`tests.dense`): structural matrices reduced by inverting B0, the stationary first-session
covariance by a Kronecker solve, session-specific innovation covariances per transition, and,
for the integrated likelihood, the patient-level trait covariance added to every pair of cells
(``1 1' (x) T``). Imputed cells take the values of the imputation parameters. Options covered:
three levels with trait effects, trends, session means with session-specific innovations,
moderators, therapist slopes, and same-session paths with random slopes (grid and sums).
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_alliance.model.build import build_model
from bayes_alliance.spec.model_spec import ModelSpec
from tests.likelihood_cases import (
    CASES,
    COMPLETE,
    POINT,
    ROWS,
    dense_reference,
    natural_point,
    session_data,
    transformed_point,
)


@pytest.mark.parametrize("dataset", ["gaps", "complete"])
@pytest.mark.parametrize("traits", ["integrated", "sampled"])
@pytest.mark.parametrize("case", list(CASES))
def test_loglik_equals_dense_gaussian(case, traits, dataset):
    opts = CASES[case]
    three = opts.get("therapist_level", True)
    data = session_data(ROWS if dataset == "gaps" else COMPLETE, therapist=three)
    spec = ModelSpec(**{**opts, "traits": traits})
    model = build_model(data, spec)
    nat = natural_point(model, data, spec, np.random.default_rng(5))
    point = transformed_point(model, nat)
    if traits == "sampled":
        terms = [model["predictor"], model["outcome"], model["missing_cells"]]
    else:
        terms = [model["integrated_series"]]
    ours = float(
        model.compile_fn(model.logp(vars=terms), inputs=model.value_vars, on_unused_input="ignore")(
            point
        )
    )
    ref = dense_reference(data, spec, nat, traits)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)


def _integrated_against_dense(opts: dict, dataset: str, seed: int):
    """The integrated likelihood at a random parameter point of ``opts`` and the dense joint
    Gaussian of the same point: (ours, dense, the compiled log density, model, natural
    point, data)."""
    three = opts.get("therapist_level", True)
    data = session_data(ROWS if dataset == "gaps" else COMPLETE, therapist=three)
    spec = ModelSpec(**opts)
    model = build_model(data, spec)
    nat = natural_point(model, data, spec, np.random.default_rng(seed))
    fn = model.compile_fn(
        model.logp(vars=[model["integrated_series"]]),
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    ours = float(fn(transformed_point(model, nat)))
    return ours, dense_reference(data, spec, nat, "integrated"), fn, model, nat, data


@pytest.mark.parametrize("dataset", ["gaps", "complete"])
@pytest.mark.parametrize("case", list(CASES))
def test_measurement_error_loglik_equals_dense_gaussian(case, dataset):
    """With measurement error each observed cell is M + w + eps: the dense reference adds
    diag(omega_x^2, omega_y^2) to every cell's block; complete series too go through the
    Kalman filter (the error is its observation noise)."""
    opts = CASES[case]
    ours, ref, _, _, nat, data = _integrated_against_dense(
        {**opts, "measurement_error": True}, dataset, 5
    )
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)
    # the error term matters: the same point without it is another density
    assert ref != pytest.approx(dense_reference(data, ModelSpec(**opts), nat, "integrated"))


RANDOM_INNOVATION_CASES = {
    "patients, three levels, gaps and error": dict(
        random_innovations=("patient",), measurement_error=True
    ),
    "patients and therapists, lag-0, both slopes": dict(
        random_innovations=("patient", "therapist"),
        same_session="predictor_to_outcome",
        random_slopes=("patient", "therapist"),
    ),
    "patients, two levels, trend": dict(
        random_innovations=("patient",), therapist_level=False, trend=True
    ),
    "patients, baseline": dict(random_innovations=("patient",), baseline=("moderator",)),
}


@pytest.mark.parametrize("dataset", ["gaps", "complete"])
@pytest.mark.parametrize("case", list(RANDOM_INNOVATION_CASES))
def test_random_innovations_loglik_equals_dense_gaussian(case, dataset):
    """Per-patient innovation SDs ``sd exp(s_P u_i + s_T v_j)`` and the traits' shift by the
    patient's instability ``G u_i``, against the dense Gaussian of every series."""
    ours, ref, fn, model, nat, _ = _integrated_against_dense(
        RANDOM_INNOVATION_CASES[case], dataset, 9
    )
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)
    still = {**nat, "sd_log_innovation_predictor_patient": 0.0}
    assert float(fn(transformed_point(model, still))) != pytest.approx(ours, rel=1e-6)


def test_state_effect_by_patient_is_the_structural_slope():
    """With a lag-0 path x_t -> y_t the reduced-form slope is c_i + b0 a; the stored per-patient
    state effect is the structural c_i (the Bayesian R-squared and the predictive replicates add
    the same-session term themselves)."""
    data = session_data(ROWS, therapist=True)
    spec = ModelSpec(
        traits="sampled", same_session="predictor_to_outcome", random_slopes=("patient",)
    )
    model = build_model(data, spec)
    nat = natural_point(model, data, spec, np.random.default_rng(1))
    point = transformed_point(model, nat)
    (slope,) = model.replace_rvs_by_values([model["state_effect_by_patient"]])
    fn = model.compile_fn(slope, inputs=model.value_vars, on_unused_input="ignore")
    expected = (
        POINT["state_effect"] + POINT["sd_state_effect_patient"] * nat["state_effect_patient_raw"]
    )
    np.testing.assert_allclose(fn(point), expected, rtol=1e-12)


BASELINE_CASES = {
    "baseline, three levels": dict(baseline=("moderator",)),
    "baseline, two levels, trend": dict(therapist_level=False, baseline=("moderator",), trend=True),
    "baseline, session means, session innovations": dict(
        therapist_level=False,
        session_means=True,
        innovations="session",
        first_session="free",
        baseline=("moderator",),
    ),
    "baseline with moderator and patient slopes": dict(
        baseline=("moderator",), moderators=("moderator",), random_slopes=("patient",)
    ),
    "baseline with measurement error": dict(baseline=("moderator",), measurement_error=True),
}


@pytest.mark.parametrize("dataset", ["gaps", "complete"])
@pytest.mark.parametrize("case", list(BASELINE_CASES))
def test_baseline_loglik_equals_dense_gaussian(case, dataset):
    """Between-level mediation (integrated traits): the baseline's shifts of the latent means
    enter every likelihood path (sums of products, masked grid, Kalman filter) exactly."""
    ours, ref, fn, model, nat, _ = _integrated_against_dense(BASELINE_CASES[case], dataset, 7)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)
    # The shift matters: without it the density differs.
    off = {**nat, "baseline_effect_predictor": np.zeros(1), "baseline_effect_outcome": np.zeros(1)}
    assert float(fn(transformed_point(model, off))) != pytest.approx(ours, rel=1e-6)


@pytest.mark.parametrize("dataset", ["gaps", "complete"])
@pytest.mark.parametrize("three", [True, False], ids=["three levels", "two levels"])
def test_baseline_sampled_traits(three, dataset):
    """Sampled traits with a baseline: the cells' likelihood given the (whole) latent means is
    the dense one, and the latent means' own prior carries the paths:
    M_x ~ N(mu_x + top_x + a z, sd_px^2), M_y ~ N(mu_y + top_y + c' z + b (M_x - mu_x - top_x),
    sd_py^2)."""
    from scipy import stats

    data = session_data(ROWS if dataset == "gaps" else COMPLETE, therapist=three)
    spec = ModelSpec(baseline=("moderator",), traits="sampled", therapist_level=three)
    model = build_model(data, spec)
    nat = natural_point(model, data, spec, np.random.default_rng(8))
    point = transformed_point(model, nat)

    def logp(names: list[str]) -> float:
        terms = [model[n] for n in names]
        fn = model.compile_fn(
            model.logp(vars=terms), inputs=model.value_vars, on_unused_input="ignore"
        )
        return float(fn(point))

    cells = logp(["predictor", "outcome", "missing_cells"])
    assert cells == pytest.approx(dense_reference(data, spec, nat, "sampled"), rel=1e-9)
    p = {k: np.asarray(val, dtype=float) for k, val in nat.items()}
    z = data.covariates["moderator"].to_numpy(dtype=float)
    z = z - z.mean()
    top_x = top_y = np.zeros(data.n_patients)
    if three:
        tj = data.patient_therapist
        top_x = p["sd_therapist_predictor"] * p["therapist_dev_predictor_raw"][tj]
        top_y = p["sd_therapist_outcome"] * p["therapist_dev_outcome_raw"][tj]
        top_y = top_y + p["trait_effect_therapist"] * top_x
    mx, my = p["trait_predictor"], p["trait_outcome"]
    a, c, b = p["baseline_effect_predictor"][0], p["baseline_effect_outcome"][0], -0.4
    # M_x's mean: mu_x + top_x + (known shift); M_y's: mu_y + top_y + c' z + b (M_x - mu_x -
    # top_x), b (a z + e_x) being the patient-level mediation.
    known_x, direct_y = a * z, c * z
    if three:
        # Split at the therapists: the therapist means' part z_B has its own paths a_B, c'_B
        # and is mediated by b_T (it moves the therapist part, as a therapist-level baseline
        # does), the within part z_W by b as before.
        means = np.array([z[tj == j].mean() for j in range(len(data.therapists))])
        z_w, z_b = z - means[tj], means[tj] - means.mean()
        a_b = p["baseline_effect_predictor_between"][0]
        c_b = p["baseline_effect_outcome_between"][0]
        top_x = top_x + a_b * z_b
        known_x = a * z_w
        direct_y = c * z_w + (c_b + float(p["trait_effect_therapist"]) * a_b) * z_b
    ref = stats.norm.logpdf(mx, 3.0 + top_x + known_x, 0.8).sum()
    ref += stats.norm.logpdf(my, 1.0 + top_y + direct_y + b * (mx - 3.0 - top_x), 0.6).sum()
    assert logp(["trait_predictor", "trait_outcome"]) == pytest.approx(ref, rel=1e-10)


def test_baseline_rejected_where_not_supported():
    with pytest.raises(ValueError, match="session_means"):
        ModelSpec(baseline=("moderator",), traits="sampled", session_means=True)
    data = session_data(COMPLETE)
    with pytest.raises(ValueError, match="not patient covariates"):
        build_model(data, ModelSpec(baseline=("x",)))
