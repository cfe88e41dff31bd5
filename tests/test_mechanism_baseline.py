"""Between-level (baseline) mediation in the integrated mechanism model: the density with the
baseline's mean shifts against the dense joint Gaussian (``tests/dense_k.py``, whose means are
built from the design there), the model's wiring, the per-patient densities, the effects
against a simulated population, and the options and data checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest

from bayes_alliance.cli.mechanisms import mechanism_spec
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.data.validate import DataValidationError
from bayes_alliance.mechanisms.baseline import between_mediation
from bayes_alliance.mechanisms.integrated import (
    EndParams,
    IntegratedParams,
    filter_inputs,
    marginal_logp,
)
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.priors import MechanismGrid, mechanism_priors
from bayes_alliance.mechanisms.records import (
    series_data_from_table,
    series_provenance,
    series_table,
)
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import simulate_mechanisms
from bayes_alliance.spec.model_spec import ModelSpec
from tests.dense_k import Baseline, EndOutcome, dense_logp
from tests.model_points import cov_of, potential_at_random_point

N_SESSIONS = 5


def _frame(design: str, therapists: int, end: bool, seed: int = 11) -> pd.DataFrame:
    """A small table with gaps, uneven series, one patient without an end outcome and two
    patient-level baseline columns (z1, z2)."""
    df, _ = simulate_mechanisms(
        seed=seed,
        design=design,
        n_therapists=therapists,
        patients_per_therapist=3 if therapists else 6,
        n_sessions=N_SESSIONS,
        missing=0.15,
        change_sd=0.1 if end else 0.0,
        end_effects=(0.5, 1.0) if end else None,
        end_therapist_sd=0.3 if end and therapists else 0.0,
    )
    df = df[~((df.patient == "p0001") & (df.session <= 2))]
    df = df[~((df.patient == "p0002") & (df.session >= 4))].reset_index(drop=True)
    if end:
        df.loc[df.patient == "p0003", "post_symptoms"] = np.nan
    rng = np.random.default_rng(seed)
    ids = sorted(df.patient.unique())
    for col, scale in (("z1", 1.0), ("z2", 3.0)):
        values = dict(zip(ids, 2.0 + scale * rng.normal(size=len(ids)), strict=True))
        df[col] = df.patient.map(values)
    return df


def _data(df: pd.DataFrame, design: str, therapists: bool, end: bool) -> SeriesData:
    third = {"mediator": "mediator"} if design == "mediation" else {}
    return SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        therapist="therapist" if therapists else None,
        end_outcome="post_symptoms" if end else None, covariates=["z1", "z2"], **third,
    )  # fmt: skip


def _centred(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """The baseline per patient (sorted ids), centred over patients: from the table itself."""
    per = df.groupby("patient")[cols].first().sort_index()
    return (per - per.mean()).to_numpy()


def _spd(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.normal(size=(n, n))
    return a @ a.T / n + np.eye(n)


CASES = [
    ("mediation", 2, True, ["z1"]),
    ("two_series", 0, True, ["z1", "z2"]),
    ("mediation", 0, False, ["z2"]),
    ("two_series", 3, False, ["z1", "z2"]),
]


@pytest.mark.parametrize(("design", "therapists", "end", "cols"), CASES)
def test_marginal_density_with_a_baseline_is_the_dense_joint_gaussian(
    design, therapists, end, cols
):
    df = _frame(design, therapists, end)
    data = _data(df, design, bool(therapists), end)
    grid = MechanismGrid.of(data)
    k, n, q = data.k, data.n_patients, len(cols)
    rng = np.random.default_rng(5)
    intercept = rng.normal(size=k)
    phi = rng.normal(scale=0.25, size=(n, k, k))
    sigma, first_cov, sigma_p = _spd(rng, k), _spd(rng, k), _spd(rng, k + int(end)) * 0.5
    sigma_t = _spd(rng, k) * 0.3 if therapists else None
    gamma = rng.normal(size=(k, q))
    c_end = rng.normal(size=q)
    z = _centred(df, cols)
    g_p = 0.8
    endp = None
    if end:
        # the end outcome's known shift: direct c' plus g_P times the predictor's shift
        endp = EndParams(0.3, g_p, -0.6, 0.5 if therapists else None, 0.7,
                         0.4 if therapists else None, z @ c_end + g_p * (z @ gamma[0]))  # fmt: skip
    params = IntegratedParams(
        intercept, phi, sigma, first_cov, np.linalg.cholesky(sigma_p), 0.07 if end else None,
        np.zeros(k), None if sigma_t is None else np.linalg.cholesky(sigma_t), endp,
        baseline=z @ gamma.T,
    )  # fmt: skip
    inputs = filter_inputs(data, grid, trend=end)
    logp, _ = marginal_logp(data, inputs, grid.filled, grid.time, params, np)
    observed = np.isfinite(data.z)
    dense_end = None
    if end:
        dense_end = EndOutcome(
            O=data.end_outcome, g0=0.3, gP=g_p, sdO=0.7, gT=0.5 if therapists else 0.0,
            gS=-0.6, tauO=0.4 if therapists else 0.0, cz=c_end,
        )  # fmt: skip
    want = dense_logp(
        np.where(observed, data.z, 0.0), observed, data.first, data.last, grid.time, intercept,
        phi, sigma, first_cov, sigma_p, np.zeros(k),
        therapist=data.patient_therapist if therapists else None, sigma_t=sigma_t,
        trend=0.07 if end else 0.0, end=dense_end, baseline=Baseline(z, gamma),
    )  # fmt: skip
    assert float(np.sum(logp)) == pytest.approx(want, abs=1e-8)
    logp_t, _ = marginal_logp(data, inputs, grid.filled, grid.time, params, pt)
    assert float(pt.sum(logp_t).eval()) == pytest.approx(want, abs=1e-8)
    # the shift matters: the density without it differs
    without = dense_logp(
        np.where(observed, data.z, 0.0), observed, data.first, data.last, grid.time, intercept,
        phi, sigma, first_cov, sigma_p, np.zeros(k),
        therapist=data.patient_therapist if therapists else None, sigma_t=sigma_t,
        trend=0.07 if end else 0.0, end=dense_end,
    )  # fmt: skip
    assert abs(without - want) > 1e-3


def _model_values(model, names, seed=0):
    return potential_at_random_point(model, names, seed, scale=0.3)


def test_the_model_potential_is_the_marginal_density_with_the_baseline_shifts():
    df = _frame("mediation", 2, True)
    data = _data(df, "mediation", True, True)
    spec = MechanismSpec(therapist_level=True, baseline=("z1", "z2"))
    model = build_mechanism_model(data, spec)
    spec = spec.resolved(data)
    names = [
        "intercept", "lag", "path_deviation", "sd_innovation", "corr_innovation", "sd_first",
        "corr_first", "sd_patient", "corr_patient", "sd_therapist", "corr_therapist", "trend",
        "end_intercept", "end_trait_effect_patient", "end_change_effect",
        "end_trait_effect_therapist", "end_sd", "sd_end_therapist", "baseline_effect",
        "baseline_effect_end",
    ]  # fmt: skip
    got, v = _model_values(model, names)
    assert v["baseline_effect"].shape == (3, 2) and v["baseline_effect_end"].shape == (2,)

    def cov(name):
        return cov_of(v, name)

    idx = {r: i for i, r in enumerate(data.roles)}
    phi = np.broadcast_to(v["lag"], (data.n_patients, 3, 3)).copy()
    for r, (to, source) in enumerate(spec.random_paths or ()):
        phi[:, idx[to], idx[source]] += v["path_deviation"][:, r]
    z = _centred(df, ["z1", "z2"])
    gamma, g_p = v["baseline_effect"], float(v["end_trait_effect_patient"])
    params = IntegratedParams(
        v["intercept"], phi, cov("innovation"), cov("first"),
        np.linalg.cholesky(cov("patient")), v["trend"], np.zeros(3),
        np.linalg.cholesky(cov("therapist")),
        EndParams(v["end_intercept"], g_p, v["end_change_effect"],
                  v["end_trait_effect_therapist"], v["end_sd"], v["sd_end_therapist"],
                  z @ v["baseline_effect_end"] + g_p * z @ gamma[0]),
        baseline=z @ gamma.T,
    )  # fmt: skip
    grid = MechanismGrid.of(data)
    want, _ = marginal_logp(data, filter_inputs(data, grid, True), grid.filled, grid.time, params)
    assert got == pytest.approx(float(np.sum(want)), rel=1e-10)


def test_baseline_priors_follow_the_joint_models_rule():
    """N(0, SD_series / SD_z) per path (SD_z over patients), N(0, SD_O / SD_z) onto the end."""
    df = _frame("two_series", 0, True)
    data = _data(df, "two_series", False, True)
    spec = MechanismSpec(baseline=("z1", "z2")).resolved(data)
    p = mechanism_priors(data, spec)
    per = df.groupby("patient")[["z1", "z2"]].first()
    sd_z = per.std(ddof=0).to_numpy()
    sd_series = np.array([np.nanstd(df[c]) for c in ("alliance", "symptoms")])
    assert p.baseline is not None and p.baseline.end is not None
    np.testing.assert_allclose(p.baseline.series, sd_series[:, None] / sd_z[None, :])
    o = df.groupby("patient")["post_symptoms"].first().dropna()
    np.testing.assert_allclose(p.baseline.end, np.std(o) / sd_z)
    assert mechanism_priors(data, MechanismSpec()).baseline is None


def test_each_patients_density_with_a_baseline_is_its_dense_gaussian():
    from bayes_alliance.mechanisms.patient_density import patient_loglik

    df = _frame("two_series", 0, True)
    data = _data(df, "two_series", False, True)
    spec = MechanismSpec(baseline=("z1",)).resolved(data)
    rng = np.random.default_rng(4)
    k = data.k
    sigma_p = _spd(rng, k + 1) * 0.5
    draw = {
        "lag": rng.normal(scale=0.2, size=(k, k)),
        "intercept": rng.normal(size=k),
        "trend": np.array(0.05),
        "end_intercept": np.array(0.2),
        "end_trait_effect_patient": np.array(0.7),
        "end_change_effect": np.array(-0.4),
        "end_sd": np.array(0.8),
        "baseline_effect": rng.normal(size=(k, 1)),
        "baseline_effect_end": rng.normal(size=1),
    }
    covs = {"innovation": _spd(rng, k), "first": _spd(rng, k), "patient": sigma_p}
    for name, c in covs.items():
        sd = np.sqrt(np.diag(c))
        draw[f"sd_{name}"], draw[f"corr_{name}"] = sd, c / np.outer(sd, sd)
    post = {name: np.asarray(val)[None, None] for name, val in draw.items()}
    got = patient_loglik(post, data, spec, seed=1)[0, 0]
    grid = MechanismGrid.of(data)
    z = _centred(df, ["z1"])
    for i in range(data.n_patients):
        obs = np.isfinite(data.z[i : i + 1])
        end = EndOutcome(
            O=data.end_outcome[i : i + 1], g0=0.2, gP=0.7, sdO=0.8, gS=-0.4,
            cz=draw["baseline_effect_end"],
        )  # fmt: skip
        want = dense_logp(
            np.where(obs, data.z[i : i + 1], 0.0), obs, data.first[i : i + 1],
            data.last[i : i + 1], grid.time[i : i + 1], draw["intercept"], draw["lag"],
            covs["innovation"], covs["first"], sigma_p, np.zeros(k), trend=0.05, end=end,
            baseline=Baseline(z[i : i + 1], draw["baseline_effect"]),
        )  # fmt: skip
        assert got[i] == pytest.approx(want, abs=1e-8)


def test_between_mediation_recovers_a_simulated_populations_paths():
    """Latent means drawn from the structural form (z -> x, z -> m, y on x, m and z) and the
    model's quantities read off them by least squares: each mean's shift per unit of z and the
    residual covariance. The effects must give back the generating a b, c', the mediator's
    part and, onto an end outcome, a g_P and c_O."""
    rng = np.random.default_rng(3)
    n = 400_000
    a, g_m, b_x, b_m, c_y = 0.6, -0.4, -0.5, 0.3, 0.25
    g_p, c_o = 0.8, -0.2
    z = rng.normal(size=n)
    ex = rng.normal(size=n)
    em = 0.5 * ex + rng.normal(size=n)
    x = a * z + ex
    m = g_m * z + em
    y = b_x * x + b_m * m + c_y * z + 0.7 * rng.normal(size=n)
    traits = np.column_stack([x, m, y])
    design = np.column_stack([np.ones(n), z])
    coef, *_ = np.linalg.lstsq(design, traits, rcond=None)
    resid = traits - design @ coef
    gamma = coef[1][:, None]  # (k, 1)
    out = between_mediation(
        gamma, np.cov(resid.T), ("predictor", "mediator", "outcome"),
        np.array([c_o]), np.array(g_p),
    )  # fmt: skip
    tol = 0.01
    assert out["indirect_effect_between"][0] == pytest.approx(a * b_x, abs=tol)
    assert out["direct_effect_between"][0] == pytest.approx(c_y, abs=tol)
    assert out["indirect_effect_between_mediator"][0] == pytest.approx(g_m * b_m, abs=tol)
    total = c_y + a * b_x + g_m * b_m
    assert out["total_effect_between"][0] == pytest.approx(total, abs=tol)
    assert out["proportion_mediated_between"][0] == pytest.approx(a * b_x / total, abs=0.05)
    assert out["baseline_effect_predictor"][0] == pytest.approx(a, abs=tol)
    assert out["indirect_effect_between_end"][0] == pytest.approx(a * g_p, abs=tol)
    assert out["total_effect_between_end"][0] == pytest.approx(c_o + a * g_p, abs=tol)


def test_missing_baseline_values_are_refused_naming_column_and_patients():
    df = _frame("two_series", 0, False)
    df.loc[df.patient.isin(["p0002", "p0004"]), "z2"] = np.nan
    data = _data(df, "two_series", False, False)
    with pytest.raises(DataValidationError) as err:
        MechanismSpec(baseline=("z1", "z2")).resolved(data)
    text = str(err.value)
    assert "'z2'" in text and "p0002" in text and "p0004" in text and "'z1'" not in text
    df["z1"] = 1.0
    with pytest.raises(DataValidationError, match="same value"):
        MechanismSpec(baseline=("z1",)).resolved(_data(df, "two_series", False, False))
    with pytest.raises(ValueError, match="'age'"):
        MechanismSpec(baseline=("age",)).resolved(data)


def test_a_baseline_with_a_binary_end_outcome_takes_the_sampled_form():
    df, _ = simulate_mechanisms(
        seed=3, design="two_series", patients_per_therapist=8, n_sessions=5,
        change_sd=0.1, end_effects=(0.5, 1.0), end_binary=True,
    )  # fmt: skip
    df["z"] = df.patient.map({p: float(i) for i, p in enumerate(sorted(df.patient.unique()))})
    data = SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        end_outcome="dropout", covariates=["z"],
    )  # fmt: skip
    spec = MechanismSpec(baseline=("z",)).resolved(data)  # refused before issue 26
    assert spec.traits == "sampled" and spec.baseline == ("z",)


def test_the_spec_records_its_baseline_and_reads_old_files():
    spec = MechanismSpec(random_paths=(), baseline=("z1", "z2"))
    assert MechanismSpec.from_dict(spec.to_dict()) == spec
    old = spec.to_dict()
    del old["baseline"]
    assert MechanismSpec.from_dict(old).baseline == ()


def test_a_saved_table_keeps_the_baseline_columns():
    df = _frame("mediation", 2, True)
    data = _data(df, "mediation", True, True)
    back = series_data_from_table(series_table(data), series_provenance(data))
    pd.testing.assert_frame_equal(back.base.covariates, data.base.covariates)


def test_cli_options_carry_a_patient_level_baseline():
    roles = ("predictor", "mediator", "outcome")
    spec = mechanism_spec(ModelSpec(baseline=("z1",), baseline_level="patient"), roles)
    assert spec.baseline == ("z1",) and spec.baseline_level == "patient"
    assert mechanism_spec(ModelSpec(baseline=("z1", "z2")), roles).baseline == ("z1", "z2")


def test_a_fits_effects_carry_one_row_per_baseline_column_with_labels():
    import xarray as xr

    from bayes_alliance.inference.results import summarise_draws
    from bayes_alliance.mechanisms.effect_draws import effect_draws
    from bayes_alliance.report.labels import mechanism_label

    df = _frame("two_series", 0, False)
    data = _data(df, "two_series", False, False)
    spec = MechanismSpec(baseline=("z1", "z2"))
    rng = np.random.default_rng(2)
    shape = (2, 3)  # chains, draws
    cov = np.array([[1.0, -0.4], [-0.4, 0.9]])
    sd = np.sqrt(np.diag(cov))
    gamma = rng.normal(size=(*shape, 2, 2))
    post = xr.Dataset(
        {
            "lag": (("chain", "draw", "to", "from"), rng.normal(scale=0.2, size=(*shape, 2, 2))),
            "sd_innovation": (("chain", "draw", "s"), np.ones((*shape, 2))),
            "sd_patient": (("chain", "draw", "s"), np.broadcast_to(sd, (*shape, 2))),
            "corr_patient": (
                ("chain", "draw", "s", "s2"),
                np.broadcast_to(cov / np.outer(sd, sd), (*shape, 2, 2)),
            ),
            "baseline_effect": (("chain", "draw", "series", "baseline"), gamma),
        }
    )
    out = effect_draws(post, data, spec)
    # b = cov / var of the predictor's part, by hand: -0.4
    np.testing.assert_allclose(out["indirect_effect_between"].values, gamma[..., 0, :] * -0.4)
    np.testing.assert_allclose(
        out["direct_effect_between"].values, gamma[..., 1, :] + 0.4 * gamma[..., 0, :]
    )
    rows = summarise_draws(out).index
    assert {"indirect_effect_between[z1]", "indirect_effect_between[z2]"} <= set(rows)
    words = {"x": "alliance", "y": "symptoms"}
    label = mechanism_label("indirect_effect_between[z2]", words, "two_series")
    assert "z2" in label and "alliance" in label and "symptoms" in label


def test_one_series_alone_has_its_shift_and_the_route_to_the_end_outcome():
    # one series (no outcome): a = gamma_x, and with an end outcome a g_P, c_O, c_O + a g_P
    gamma = np.array([[[0.5, -0.2]]])  # (draw, k = 1, q = 2)
    out = between_mediation(gamma, np.array([[[1.0]]]), ("predictor",))
    assert set(out) == {"baseline_effect_predictor"}
    np.testing.assert_allclose(out["baseline_effect_predictor"], [[0.5, -0.2]])
    end = between_mediation(
        gamma, np.array([[[1.0]]]), ("predictor",), np.array([[0.1, 0.3]]), np.array([-2.0])
    )
    np.testing.assert_allclose(end["indirect_effect_between_end"], [[-1.0, 0.4]])
    np.testing.assert_allclose(end["total_effect_between_end"], [[-0.9, 0.7]])
    np.testing.assert_allclose(end["proportion_mediated_between_end"], [[-1.0 / -0.9, 0.4 / 0.7]])
