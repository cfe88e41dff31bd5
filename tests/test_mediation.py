"""Between-level mediation by a patient baseline characteristic (issue 13): the baseline's shift
of the latent means is counted exactly once in the reported traits, the states and the
replicates, and the derived effects are the products and sums they claim to be."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayes_alliance.core import vocab as v
from bayes_alliance.effects import derived as effects
from bayes_alliance.inference import posthoc, predictive
from bayes_alliance.inference.states import states_of
from bayes_alliance.spec.model_spec import ModelSpec
from tests.likelihood_cases import (
    COMPLETE,
    EXPERIENCE,
    POINT,
    ROWS,
    baseline_known,
    session_data,
)

SPEC = ModelSpec(baseline=("moderator",))
A, C = 0.45, -0.3  # the a and c' paths of POINT


def _posterior(spec: ModelSpec, n: int, **over: object) -> xr.Dataset:
    """One chain of ``n`` identical draws at POINT (overrides by name), as a Dataset: the
    estimated parameters and the derived ones a fit stores beside them."""
    out = {}
    for name in dict.fromkeys([*spec.free_parameters(), *spec.prior_names()]):
        val = np.asarray(over.get(name, POINT[name]), dtype=float)
        dims = ("chain", "draw", *(("baseline",) if val.ndim else ()))
        out[name] = xr.DataArray(np.broadcast_to(val, (1, n, *val.shape)).copy(), dims=dims)
    return xr.Dataset(out)


def _shift(data) -> tuple[np.ndarray, np.ndarray]:
    # Three-level data: the patient-level baseline is split at the therapists (within paths
    # a, c' with b_P; between paths with b_T), written out by hand in baseline_known.
    known = np.array([baseline_known(data, SPEC, POINT, i) for i in range(data.n_patients)])
    return POINT["intercept_predictor"] + known[:, 0], POINT["intercept_outcome"] + known[:, 1]


@pytest.mark.parametrize("rows", [ROWS, COMPLETE], ids=["gaps", "complete"])
def test_traits_are_whole_latent_means_and_states_count_the_shift_once(rows):
    data = session_data(rows)
    tiny = 1e-5  # patient and therapist SDs: the latent means sit at their prior means
    post = _posterior(
        SPEC,
        4,
        sd_patient_predictor=tiny,
        sd_patient_outcome=tiny,
        sd_patient_outcome_total=tiny,
        sd_therapist_predictor=tiny,
        sd_therapist_outcome=tiny,
        sd_therapist_outcome_total=tiny,
    )
    got, _ = posthoc.complete(post, data, SPEC, random_seed=3)
    mx, my = _shift(data)
    np.testing.assert_allclose(got["trait_predictor"].values[0], np.tile(mx, (4, 1)), atol=1e-3)
    np.testing.assert_allclose(got["trait_outcome"].values[0], np.tile(my, (4, 1)), atol=1e-3)

    # With the usual SDs: states of observed cells are the data minus the whole trait, and
    # states_of (which starts from the reported traits) agrees with the drawn states.
    post = _posterior(SPEC, 3)
    got, _ = posthoc.complete(post, data, SPEC, random_seed=3)
    full = post.assign(got)
    trait_x = got["trait_predictor"].values[..., None]
    obs = data.observed_x & data.in_series
    want = np.where(obs, data.x[None, None] - trait_x, np.nan)
    np.testing.assert_allclose(got["state_predictor"].values, want, atol=1e-12)
    rows_ = np.array([2, 0])
    wx, wy = states_of(full, data, SPEC, rows_)
    np.testing.assert_allclose(wx, got["state_predictor"].values[:, :, rows_], atol=1e-12)
    np.testing.assert_allclose(wy, got["state_outcome"].values[:, :, rows_], atol=1e-12)


def test_replicates_centre_on_the_whole_trait():
    data = session_data(COMPLETE)
    n = 4000
    post = _posterior(SPEC, n)
    got, _ = posthoc.complete(post, data, SPEC, random_seed=5, states=False)
    full = post.assign(got)
    pp = predictive.posterior_predictive(full, data, SPEC, random_seed=9)
    rows, _ = np.nonzero(data.observed_x)
    dev = pp[v.PREDICTOR].values[0] - got["trait_predictor"].values[0][:, rows]
    # The replicate minus the draw's latent mean is a stationary state (SD about 0.6): its
    # mean over n draws is within a few SE (0.01) of 0; counting the shift twice (or not at
    # all) moves it by |a z_i| (up to 0.5 here).
    assert np.abs(dev.mean(axis=0)).max() < 0.05
    rows_y, _ = np.nonzero(data.observed_y)
    dev_y = pp[v.OUTCOME].values[0] - got["trait_outcome"].values[0][:, rows_y]
    assert np.abs(dev_y.mean(axis=0)).max() < 0.05


def test_mediation_effects_from_posterior_arrays():
    a = np.array([[0.5, -0.2, 1.0]])
    b = np.array([[0.4, 0.5, -1.0]])
    c = np.array([[0.1, 0.3, 1.0]])
    post = {
        v.BASELINE_EFFECT_PREDICTOR: a[..., None],
        v.BASELINE_EFFECT_OUTCOME: c[..., None],
        v.TRAIT_EFFECT_PATIENT: b,
    }
    out = effects.mediation_between(post)
    assert set(out) == set(effects.MEDIATION_BETWEEN)
    np.testing.assert_allclose(out["indirect_effect_between"], [[0.2, -0.1, -1.0]])
    np.testing.assert_allclose(out["direct_effect_between"], c)
    np.testing.assert_allclose(out["total_effect_between"], [[0.3, 0.2, 0.0]])
    prop = out["proportion_mediated_between"]
    np.testing.assert_allclose(prop[0, :2], [0.2 / 0.3, -0.1 / 0.2])
    assert not np.isfinite(prop[0, 2])  # a zero total effect: no proportion
    # Several baseline columns: one entry per column, each with its own a and c'.
    two = {
        v.BASELINE_EFFECT_PREDICTOR: np.stack([a, 2 * a], -1),
        v.BASELINE_EFFECT_OUTCOME: np.stack([c, c], -1),
        v.TRAIT_EFFECT_PATIENT: b,
    }
    out2 = effects.mediation_between(two)
    assert out2["indirect_effect_between"].shape == (1, 3, 2)
    np.testing.assert_allclose(out2["indirect_effect_between"][..., 1], 2 * a * b)


def test_mediation_rows_only_with_a_baseline():
    from bayes_alliance.effects.variance import Design

    data = session_data(COMPLETE)
    post = {k: np.asarray(val, dtype=float)[None, None] for k, val in POINT.items()}
    plain = ModelSpec()
    without = effects.derived_effects(post, plain, Design.of(data, plain))
    with_ = effects.derived_effects(post, SPEC, Design.of(data, SPEC))
    assert not set(effects.MEDIATION_BETWEEN) & set(without)
    assert set(effects.MEDIATION_BETWEEN) <= set(with_)
    b = POINT["trait_effect_patient"]
    assert with_["indirect_effect_between"].shape == (1, 1)
    assert float(with_["total_effect_between"][0, 0]) == pytest.approx(C + A * b)


def test_cli_fit_with_baseline_writes_mediation_rows(baseline_cli_fit):
    """A small fit through the command line: the paths and the derived effects in
    effects.csv, named as the issue asks, with intervals."""
    import json

    import pandas as pd

    out, rc, truth = baseline_cli_fit
    assert truth.mediation["indirect_effect_between"] == pytest.approx(0.4 * -0.3)
    assert rc == (0 if json.loads((out / "convergence.json").read_text())["ok"] else 3)
    eff = pd.read_csv(out / "effects.csv").set_index("parameter")
    rows = [*effects.MEDIATION_BETWEEN, "baseline_effect_predictor[baseline]"]
    assert set(rows) <= set(eff.index)
    assert eff.loc[rows, ["ci_low", "ci_high"]].notna().all().all()
    # The derived rows are the paths' functions: c' equals its own row.
    assert eff.loc["direct_effect_between", "mean"] == pytest.approx(
        eff.loc["baseline_effect_outcome[baseline]", "mean"]
    )
    # The a path is well identified here (48 patients, 8 sessions).
    lo, hi = eff.loc["baseline_effect_predictor[baseline]", ["ci_low", "ci_high"]]
    assert lo < 0.4 < hi


def test_baseline_must_be_a_declared_covariate(tmp_path, capsys):
    from bayes_alliance import simulate
    from bayes_alliance.cli.app import main

    df, _ = simulate(seed=1, n_therapists=3, patients_per_therapist=2, sessions=4, baseline=True)
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    argv = ["fit", str(csv), "--patient", "patient", "--session", "session"]
    argv += ["--predictor", "alliance", "--outcome", "symptoms", "--baseline", "baseline"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "must also be listed as covariates" in capsys.readouterr().err
    # A session-level column is no baseline characteristic: validation names it.
    df["baseline"] = df["alliance"]
    df.to_csv(csv, index=False)
    flags = ["--covariates", "baseline", "--out", str(tmp_path / "o2"), "--quiet"]
    assert main([*argv, *flags]) == 2
    assert "varies within patient" in capsys.readouterr().err


def test_methods_paragraph_and_references_with_a_baseline():
    import re

    from bayes_alliance.core.diagnostics import Convergence
    from bayes_alliance.report import methods as report_methods
    from bayes_alliance.report import model_text as report_text

    data = session_data(COMPLETE)
    conv = Convergence(1.002, 900.0, 800.0, 0, 0.9, 2000)
    prov = {"draws": 1000, "tune": 800, "chains": 2, "sampler": "nutpie", "random_seed": 11}
    text = report_methods.methods_paragraph(SPEC, data, prov, conv, 0.95)
    assert "moderator acts on the latent mean of y directly and through that of x" in text
    refs = " ".join(report_methods.references(SPEC))
    for key in report_methods.MEDIATION_REFERENCES:
        assert key.split()[0].rstrip(",") in text
        assert re.search(rf"{key.split()[0].rstrip(',')}.*\({key[-4:]}\)", refs), key
    assert "MacKinnon" not in " ".join(report_methods.references(ModelSpec()))
    # Three-level data: the baseline is split at the therapists (issue 25); two-level data
    # keep one path on the whole baseline.
    eq = report_text.equations(SPEC)
    assert "b^x_i = a g^W_i + e^x_i" in eq and "a^x_j = a_B g^B_j + u^x_j" in eq
    assert "split at the therapists" in text
    two = ModelSpec(baseline=("moderator",), therapist_level=False)
    assert "b^x_i = a g_i + e^x_i" in report_text.equations(two)


def test_effects_rows_per_baseline_column():
    """Two baseline columns: FitResult.effects() has one mediation row per column."""
    import pandas as pd

    from bayes_alliance import SessionData
    from bayes_alliance.core.diagnostics import Convergence
    from bayes_alliance.inference.fit import FitResult
    from tests.conftest import ROLES

    df = pd.DataFrame(COMPLETE, columns=["therapist", "patient", "session", "x", "y", "moderator"])
    df["age"] = df["patient"].map({"C": 30.0, "D": 41.0, "E": 25.0, "F": 52.0})
    data = SessionData.from_frame(df, covariates=["moderator", "age"], **ROLES)
    spec = ModelSpec(baseline=("moderator", "age"))
    post = _posterior(
        spec,
        6,
        baseline_effect_predictor=[A, 0.01],
        baseline_effect_outcome=[C, 0.1 * C],
        # three-level data: each column's between-therapist part has its own paths
        baseline_effect_predictor_between=[-0.6, 0.02],
        baseline_effect_outcome_between=[0.25, 0.0],
    )
    idata = xr.DataTree(children={"posterior": xr.DataTree(post)})
    res = FitResult(idata, spec, data, {}, Convergence(1.0, 1e3, 1e3, 0, 1.0, 6))
    eff = res.effects()
    b = POINT["trait_effect_patient"]
    assert eff.loc["indirect_effect_between[moderator]", "mean"] == pytest.approx(A * b)
    assert eff.loc["indirect_effect_between[age]", "mean"] == pytest.approx(0.01 * b)
    assert eff.loc["direct_effect_between[age]", "mean"] == pytest.approx(C * 0.1)
    assert "indirect_effect_between" not in eff.index
    b_t = POINT["trait_effect_therapist"]
    assert eff.loc["indirect_effect_between_therapist[age]", "mean"] == pytest.approx(0.02 * b_t)


def test_simulator_puts_the_paths_into_the_latent_means():
    from bayes_alliance import simulate

    df, truth = simulate(
        seed=4,
        n_therapists=3,
        patients_per_therapist=3,
        sessions=4,
        sd_patient_predictor=0.0,
        sd_patient_outcome=0.0,
        sd_therapist_predictor=0.0,
        sd_therapist_outcome=0.0,
        baseline_effect_predictor=A,
        baseline_effect_outcome=C,
    )
    pat = truth.patients
    b = truth.params.trait_effect_patient
    g = pat["baseline"].to_numpy()
    np.testing.assert_allclose(pat["trait_predictor"], truth.params.intercept_predictor + A * g)
    np.testing.assert_allclose(
        pat["trait_outcome"], truth.params.intercept_outcome + (C + b * A) * g
    )
    assert (df.groupby("patient")["baseline"].nunique() == 1).all()
    assert truth.to_dict()["mediation"]["total_effect_between"] == pytest.approx(C + A * b)
    # Without a baseline there is no column (and the random stream is the one it always was).
    plain, _ = simulate(seed=4, n_therapists=3, patients_per_therapist=3, sessions=4)
    assert "baseline" not in plain.columns


def test_spec_file_baseline_key(tmp_path):
    from bayes_alliance.spec.specfile import load_spec

    head = '[data]\npatient = "p"\nsession = "s"\npredictor = "x"\noutcome = "y"\n'
    path = tmp_path / "a.toml"
    path.write_text(head + 'covariates = ["g"]\n[model]\nbaseline = ["g"]\n')
    spec = load_spec(path).model
    assert spec.baseline == ("g",)
    assert spec.free_parameters()[-2:] == [v.BASELINE_EFFECT_PREDICTOR, v.BASELINE_EFFECT_OUTCOME]
    path.write_text(head + '[model]\nbaseline = ["g"]\n')
    with pytest.raises(ValueError, match="must also be listed as covariates"):
        load_spec(path)


def test_baseline_share_enters_iccs_standardised_effect_and_r2():
    """The baseline explains part of the latent means' between-patient variance: the ICCs,
    the standardised trait effect and the f2 components count it (a' S a for x, (c' + b a)' S
    (c' + b a) for y, S the baseline's variance over patients)."""
    from bayes_alliance.effects.variance import Design

    data = session_data(COMPLETE)
    post = {k: np.asarray(val, dtype=float)[None, None] for k, val in POINT.items()}
    g = data.covariates["moderator"].to_numpy(dtype=float)
    # Three-level data: the patient level gets the within-therapist part's share (the
    # therapist means' part joins the therapist level, tests/test_baseline_split.py).
    tj = data.patient_therapist
    means = np.array([g[tj == j].mean() for j in range(len(data.therapists))])
    g = g - means[tj]
    s = g.var()
    # ... and the total variance of x the therapist means' share a_B^2 Var_T(means)
    top = float(POINT["baseline_effect_predictor_between"][0]) ** 2 * means.var()
    b, sd_px = POINT["trait_effect_patient"], POINT["sd_patient_predictor"]
    gx, gy = A**2 * s, (C + b * A) ** 2 * s
    plain = ModelSpec()
    e0 = effects.derived_effects(post, plain, Design.of(data, plain))
    e1 = effects.derived_effects(post, SPEC, Design.of(data, SPEC))
    icc0 = float(e0["icc_predictor_patient"][0, 0])
    total0 = sd_px**2 / icc0
    assert float(e1["icc_predictor_patient"][0, 0]) == pytest.approx(
        (sd_px**2 + gx) / (total0 + gx + top)
    )
    var_by = POINT["sd_patient_outcome"] ** 2 + b**2 * sd_px**2 + gy
    assert float(e1["standardised_trait_effect_patient"][0, 0]) == pytest.approx(
        b * np.sqrt((sd_px**2 + gx) / var_by)
    )
    r0 = effects.r2_components(post, plain, Design.of(data, plain))
    r1 = effects.r2_components(post, SPEC, Design.of(data, SPEC))
    assert float(r1["predictor"]["f2"][0, 0]) == pytest.approx(gx)
    assert float(r1["outcome"]["f2"][0, 0]) == pytest.approx(float(r0["outcome"]["f2"][0, 0]) + gy)
    assert float(r1["outcome"]["m2"][0, 0]) == pytest.approx(float(r0["outcome"]["m2"][0, 0]))


def test_simulator_truth_counts_the_baseline_share():
    from bayes_alliance import simulate

    kw = dict(seed=2, n_therapists=4, patients_per_therapist=5, sessions=4, baseline=True)
    _, t0 = simulate(**kw)
    _, t1 = simulate(**kw, baseline_effect_predictor=0.8)
    # Same draws (the baseline column is drawn in both), a larger patient share of x.
    assert t1.icc["predictor"]["patient"] > t0.icc["predictor"]["patient"] + 0.05
    assert t1.r2_components["predictor"]["f2"] > 0 == t0.r2_components["predictor"]["f2"]


def test_prior_of_the_paths_is_scaled_to_the_data():
    from bayes_alliance.inference.prior_predictive import prior_predictive
    from bayes_alliance.model.build import build_model

    data = session_data(COMPLETE)
    prior, pp = prior_predictive(build_model(data, SPEC), data, SPEC, 4000, random_seed=1)
    g_sd = data.covariates["moderator"].to_numpy(dtype=float).std()
    a = prior[v.BASELINE_EFFECT_PREDICTOR]
    assert a.dims == ("chain", "draw", "baseline")
    # Normal(0, SD(x) / SD(baseline)) and Normal(0, SD(y) / SD(baseline)).
    assert float(a.std()) == pytest.approx(np.nanstd(data.x) / g_sd, rel=0.05)
    c = prior[v.BASELINE_EFFECT_OUTCOME]
    assert float(c.std()) == pytest.approx(np.nanstd(data.y) / g_sd, rel=0.05)
    assert np.isfinite(pp[v.PREDICTOR].values).all()


# ----------------------------------------------------------------- therapist-level baseline
# A therapist characteristic z_j (``experience``, constant within therapist): the same a and c'
# parameters act on the therapists' parts of the latent means, b is trait_effect_therapist.

TSPEC = ModelSpec(baseline=("experience",), baseline_level="therapist")
THERAPIST_CASES = {
    "therapist baseline": dict(baseline=("experience",), baseline_level="therapist"),
    "auto resolves to therapist": dict(baseline=("experience",)),
    "therapist baseline, trend": dict(
        baseline=("experience",), baseline_level="therapist", trend=True
    ),
    "therapist baseline, moderator and slopes": dict(
        baseline=("experience",),
        baseline_level="therapist",
        moderators=("moderator",),
        random_slopes=("patient", "therapist"),
    ),
}


def _compiled_logp(model, names, point) -> float:
    fn = model.compile_fn(
        model.logp(vars=[model[n] for n in names]),
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    return float(fn(point))


@pytest.mark.parametrize("dataset", ["gaps", "complete"])
@pytest.mark.parametrize("case", list(THERAPIST_CASES))
def test_therapist_baseline_loglik_equals_dense_gaussian(case, dataset):
    """Integrated traits: the shift a z_j / (c' + b_T a) z_j of every patient of therapist j
    enters each likelihood path (sums of products, masked grid, Kalman filter) exactly, with
    the therapist parts integrated out over the caseload."""
    from bayes_alliance.model.build import build_model
    from bayes_alliance.model.covariates import resolve_baseline
    from tests.likelihood_cases import (
        dense_reference,
        natural_point,
        transformed_point,
    )

    data = session_data(ROWS if dataset == "gaps" else COMPLETE, experience=True)
    spec = resolve_baseline(data, ModelSpec(**THERAPIST_CASES[case]))
    assert spec.baseline_level == "therapist"
    model = build_model(data, spec)
    nat = natural_point(model, data, spec, np.random.default_rng(11))
    point = transformed_point(model, nat)
    ours = _compiled_logp(model, ["integrated_series"], point)
    assert ours == pytest.approx(dense_reference(data, spec, nat, "integrated"), rel=1e-9)
    # The level matters: the same paths read as patient-level (b = trait_effect_patient,
    # centred over patients) give another density.
    patient = ModelSpec(**{**THERAPIST_CASES[case], "baseline_level": "patient"})
    assert dense_reference(data, patient, nat, "integrated") != pytest.approx(ours, rel=1e-6)


@pytest.mark.parametrize("dataset", ["gaps", "complete"])
def test_therapist_baseline_sampled_traits(dataset):
    """Sampled traits: the cells given the whole latent means are the dense ones, and the
    latent means' prior carries the therapist-level paths:
    M_x ~ N(mu_x + u_x,j + a z_j, sd_px^2),
    M_y ~ N(mu_y + u_y,j + b_T u_x,j + (c' + b_T a) z_j + b_P (M_x - mu_x - u_x,j - a z_j), sd_py^2).
    """
    from scipy import stats

    from bayes_alliance.model.build import build_model
    from tests.likelihood_cases import (
        dense_reference,
        natural_point,
        transformed_point,
    )

    data = session_data(ROWS if dataset == "gaps" else COMPLETE, experience=True)
    spec = ModelSpec(baseline=("experience",), baseline_level="therapist", traits="sampled")
    model = build_model(data, spec)
    nat = natural_point(model, data, spec, np.random.default_rng(12))
    point = transformed_point(model, nat)
    cells = _compiled_logp(model, ["predictor", "outcome", "missing_cells"], point)
    assert cells == pytest.approx(dense_reference(data, spec, nat, "sampled"), rel=1e-9)
    p = {k: np.asarray(val, dtype=float) for k, val in nat.items()}
    tj = data.patient_therapist
    zt = np.array([EXPERIENCE[t] for t in data.therapists])
    z = (zt - zt.mean())[tj]  # each patient's therapist's value, centred over therapists
    u_x = p["sd_therapist_predictor"] * p["therapist_dev_predictor_raw"][tj]
    u_y = p["sd_therapist_outcome"] * p["therapist_dev_outcome_raw"][tj]
    b_t, b_p = POINT["trait_effect_therapist"], POINT["trait_effect_patient"]
    mx, my = p["trait_predictor"], p["trait_outcome"]
    # The declared covariate "moderator" (not a baseline column) adjusts both latent means.
    zm = data.covariates["moderator"].to_numpy(dtype=float)
    zm = zm - zm.mean()
    gx, gy = p["covariate_effect_predictor"][0], p["covariate_effect_outcome"][0]
    mean_x = 3.0 + u_x + A * z + gx * zm
    mean_y = 1.0 + u_y + b_t * u_x + (C + b_t * A) * z + gy * zm + b_p * (mx - mean_x)
    ref = stats.norm.logpdf(mx, mean_x, 0.8).sum() + stats.norm.logpdf(my, mean_y, 0.6).sum()
    assert _compiled_logp(model, ["trait_predictor", "trait_outcome"], point) == pytest.approx(
        ref, rel=1e-10
    )


def test_therapist_baseline_traits_states_and_replicates_count_the_shift_once():
    """Drawn latent means include a z_j and (c' + b_T a) z_j; states and replicates take it
    off once, as at patient level."""
    data = session_data(COMPLETE, experience=True)
    tiny = 1e-5
    post = _posterior(
        TSPEC,
        4,
        sd_patient_predictor=tiny,
        sd_patient_outcome=tiny,
        sd_patient_outcome_total=tiny,
        sd_therapist_predictor=tiny,
        sd_therapist_outcome=tiny,
        sd_therapist_outcome_total=tiny,
    )
    got, _ = posthoc.complete(post, data, TSPEC, random_seed=3)
    zt = np.array([EXPERIENCE[t] for t in data.therapists])
    z = (zt - zt.mean())[data.patient_therapist]
    b_t = POINT["trait_effect_therapist"]
    want_x = POINT["intercept_predictor"] + A * z
    want_y = POINT["intercept_outcome"] + (C + b_t * A) * z
    np.testing.assert_allclose(got["trait_predictor"].values[0], np.tile(want_x, (4, 1)), atol=1e-3)
    np.testing.assert_allclose(got["trait_outcome"].values[0], np.tile(want_y, (4, 1)), atol=1e-3)
    post = _posterior(TSPEC, 3)
    got, _ = posthoc.complete(post, data, TSPEC, random_seed=3)
    full = post.assign(got)
    rows_ = np.array([3, 1])
    wx, wy = states_of(full, data, TSPEC, rows_)
    np.testing.assert_allclose(wx, got["state_predictor"].values[:, :, rows_], atol=1e-12)
    np.testing.assert_allclose(wy, got["state_outcome"].values[:, :, rows_], atol=1e-12)
    n = 3000
    post = _posterior(TSPEC, n)
    got, _ = posthoc.complete(post, data, TSPEC, random_seed=5, states=False)
    pp = predictive.posterior_predictive(post.assign(got), data, TSPEC, random_seed=9)
    rows, _ = np.nonzero(data.observed_y)
    dev = pp[v.OUTCOME].values[0] - got["trait_outcome"].values[0][:, rows]
    # |(c' + b_T a) z_j| is 0.6 here: counting it twice or never would show.
    assert np.abs(dev.mean(axis=0)).max() < 0.06


def test_therapist_mediation_effects_from_posterior_arrays():
    """a b_T, c', c' + a b_T and the proportion, draw by draw, under the _therapist names;
    b is trait_effect_therapist, never trait_effect_patient."""
    a = np.array([[0.5, -0.2, 1.0]])
    b_t = np.array([[0.4, 0.5, -1.0]])
    c = np.array([[0.1, 0.3, 1.0]])
    post = {
        v.BASELINE_EFFECT_PREDICTOR: a[..., None],
        v.BASELINE_EFFECT_OUTCOME: c[..., None],
        v.TRAIT_EFFECT_THERAPIST: b_t,
        v.TRAIT_EFFECT_PATIENT: np.full((1, 3), 9.0),  # not the b path here
    }
    out = effects.mediation_between(post, "therapist")
    assert tuple(out) == effects.MEDIATION_BETWEEN_THERAPIST
    assert effects.MEDIATION_BETWEEN_THERAPIST == (
        "indirect_effect_between_therapist",
        "direct_effect_between_therapist",
        "total_effect_between_therapist",
        "proportion_mediated_between_therapist",
    )
    np.testing.assert_allclose(out["indirect_effect_between_therapist"], [[0.2, -0.1, -1.0]])
    np.testing.assert_allclose(out["direct_effect_between_therapist"], c)
    np.testing.assert_allclose(out["total_effect_between_therapist"], [[0.3, 0.2, 0.0]])
    prop = out["proportion_mediated_between_therapist"]
    np.testing.assert_allclose(prop[0, :2], [0.2 / 0.3, -0.1 / 0.2])
    assert not np.isfinite(prop[0, 2])


def test_therapist_baseline_share_enters_therapist_iccs_and_f3():
    """At therapist level the baseline explains between-therapist variance: g_x = a^2 S_T and
    g_y = (c' + b_T a)^2 S_T (S_T the variance of z over therapists) join the therapist ICCs,
    the standardised therapist trait effect and f3, and leave the patient level alone."""
    from bayes_alliance.effects.variance import Design

    data = session_data(COMPLETE, experience=True)
    post = {k: np.asarray(val, dtype=float)[None, None] for k, val in POINT.items()}
    zt = np.array(list(EXPERIENCE.values()))
    s_t = zt.var()
    b_t, sd_tx = POINT["trait_effect_therapist"], POINT["sd_therapist_predictor"]
    gx, gy = A**2 * s_t, (C + b_t * A) ** 2 * s_t
    plain = ModelSpec()
    d1 = Design.of(data, TSPEC)
    assert d1.baseline_level == "therapist" and d1.baseline.shape == (2, 1)
    e0 = effects.derived_effects(post, plain, Design.of(data, plain))
    e1 = effects.derived_effects(post, TSPEC, d1)
    assert set(effects.MEDIATION_BETWEEN_THERAPIST) <= set(e1)
    assert not set(effects.MEDIATION_BETWEEN) & set(e1)
    assert float(e1["indirect_effect_between_therapist"][0, 0]) == pytest.approx(A * b_t)
    icc0 = float(e0["icc_predictor_therapist"][0, 0])
    total0 = sd_tx**2 / icc0
    assert float(e1["icc_predictor_therapist"][0, 0]) == pytest.approx(
        (sd_tx**2 + gx) / (total0 + gx)
    )
    assert float(e1["icc_predictor_patient"][0, 0]) == pytest.approx(
        float(e0["icc_predictor_patient"][0, 0]) * total0 / (total0 + gx)
    )
    var_ay = POINT["sd_therapist_outcome"] ** 2 + b_t**2 * sd_tx**2 + gy
    assert float(e1["standardised_trait_effect_therapist"][0, 0]) == pytest.approx(
        b_t * np.sqrt((sd_tx**2 + gx) / var_ay)
    )
    assert float(e1["standardised_trait_effect_patient"][0, 0]) == pytest.approx(
        float(e0["standardised_trait_effect_patient"][0, 0])
    )
    r0 = effects.r2_components(post, plain, Design.of(data, plain))
    r1 = effects.r2_components(post, TSPEC, d1)
    assert float(r1["predictor"]["f3"][0, 0]) == pytest.approx(gx)
    assert float(r1["predictor"]["f2"][0, 0]) == 0.0
    assert float(r1["outcome"]["f3"][0, 0]) == pytest.approx(float(r0["outcome"]["f3"][0, 0]) + gy)
    assert float(r1["outcome"]["f2"][0, 0]) == pytest.approx(float(r0["outcome"]["f2"][0, 0]))


def test_baseline_level_resolution():
    """auto: therapist for a column constant within every therapist of three-level data, else
    patient; resolved once, and the resolved spec says which."""
    import pandas as pd

    from bayes_alliance import SessionData
    from bayes_alliance.model.covariates import baseline_level, resolve_baseline
    from tests.conftest import ROLES

    data = session_data(ROWS, experience=True)
    auto = ModelSpec(baseline=("experience",))
    assert auto.baseline_level == "auto"
    assert resolve_baseline(data, auto).baseline_level == "therapist"
    assert resolve_baseline(data, SPEC).baseline_level == "patient"  # varies within T1
    # Both columns must be constant within therapist for the therapist level.
    both = ModelSpec(baseline=("experience", "moderator"))
    assert baseline_level(data, both) == "patient"
    # Two-level data: patient level whatever the column.
    two = session_data(ROWS, therapist=False, experience=False)
    assert resolve_baseline(two, ModelSpec(therapist_level=False, baseline=("moderator",))) == (
        ModelSpec(therapist_level=False, baseline=("moderator",), baseline_level="patient")
    )
    # One patient per therapist: constancy says nothing, so auto keeps the patient level.
    df = pd.DataFrame(COMPLETE, columns=["therapist", "patient", "session", "x", "y", "moderator"])
    df["therapist"] = df["patient"].map({"C": "T1", "D": "T2", "E": "T3", "F": "T4"})
    solo = SessionData.from_frame(df, covariates=["moderator"], **ROLES)
    assert baseline_level(solo, SPEC) == "patient"
    # Explicit levels are kept; no baseline: nothing to resolve.
    assert resolve_baseline(data, TSPEC) is TSPEC
    plain = ModelSpec()
    assert resolve_baseline(data, plain) is plain


def test_therapist_level_errors_name_the_column_and_a_therapist():
    from bayes_alliance.data.validate import DataValidationError
    from bayes_alliance.model.covariates import resolve_baseline

    data = session_data(ROWS, experience=True)
    with pytest.raises(DataValidationError) as err:
        resolve_baseline(data, ModelSpec(baseline=("moderator",), baseline_level="therapist"))
    text = str(err.value)
    assert "'moderator'" in text and "'T1'" in text and "constant within each therapist" in text
    assert len(text.splitlines()) == 2  # one problem, no traceback-like detail
    with pytest.raises(ValueError, match="needs the therapist level"):
        ModelSpec(therapist_level=False, baseline=("moderator",), baseline_level="therapist")
    with pytest.raises(ValueError, match="baseline_level must be one of"):
        ModelSpec(baseline=("moderator",), baseline_level="clinic")
    # The model refuses it too (build_model resolves against the data).
    from bayes_alliance.model.build import build_model

    with pytest.raises(DataValidationError, match="varies within therapist"):
        build_model(data, ModelSpec(baseline=("moderator",), baseline_level="therapist"))


def test_baseline_level_option_in_cli_spec_file_and_keywords(tmp_path):
    """One option table: --baseline-level, the spec file's key and fit_frame's keyword."""
    from bayes_alliance.cli.app import build_parser
    from bayes_alliance.inference.api import model_spec
    from bayes_alliance.spec.options import MODEL, make_roles
    from bayes_alliance.spec.specfile import load_spec

    assert MODEL.option("baseline_level").choices == ("auto", "patient", "therapist")
    head = '[data]\npatient = "p"\nsession = "s"\npredictor = "x"\noutcome = "y"\n'
    head += 'therapist = "t"\ncovariates = ["g"]\n[model]\nbaseline = ["g"]\n'
    path = tmp_path / "a.toml"
    path.write_text(head + 'baseline_level = "therapist"\n')
    assert load_spec(path).model.baseline_level == "therapist"
    path.write_text(head + 'baseline_level = "clinic"\n')
    with pytest.raises(ValueError, match="baseline_level must be one of"):
        load_spec(path)
    roles = make_roles(
        {
            "patient": "p",
            "session": "s",
            "predictor": "x",
            "outcome": "y",
            "therapist": "t",
            "covariates": ("g",),
        }
    )
    spec = model_spec(None, roles, {"baseline": "g", "baseline_level": "therapist"})
    assert spec.baseline == ("g",) and spec.baseline_level == "therapist"
    args = build_parser().parse_args(
        [
            "fit",
            "d.csv",
            "--patient",
            "p",
            "--session",
            "s",
            "--predictor",
            "x",
            "--outcome",
            "y",
            "--baseline",
            "g",
            "--baseline-level",
            "patient",
            "--out",
            "o",
        ]
    )
    assert MODEL.from_args(args)["baseline_level"] == "patient"


def test_labels_and_report_text_of_a_therapist_baseline():
    from bayes_alliance.report import methods as report_methods
    from bayes_alliance.report import model_text as report_text
    from bayes_alliance.report.effect_notes import effect_note
    from bayes_alliance.report.labels import parameter_label
    from bayes_alliance.report.r2_words import component_label
    from bayes_alliance.report.tables import group_of, r2_components_present

    lab = parameter_label(
        "baseline_effect_predictor[experience]", "wai", "phq", "none", "therapist"
    )
    assert lab.startswith("a path: experience") and lab.endswith("therapist mean of wai")
    assert "trait of wai" in parameter_label("baseline_effect_predictor[age]", "wai", "phq")
    row = parameter_label("indirect_effect_between_therapist[experience]", "wai", "phq")
    assert "experience" in row and "therapist level" in row
    assert "b_T" in effect_note("indirect_effect_between_therapist", "wai", "phq")
    assert group_of("total_effect_between_therapist") == group_of("total_effect_between")
    present = r2_components_present(TSPEC)
    assert "f3" in present["predictor"] and "f2" not in present["predictor"]
    assert "therapist baseline" in component_label("f3", "predictor", TSPEC)
    eq = report_text.equations(TSPEC)
    assert "a^x_j = a g_j + u^x_j" in eq and "b^x_i = a g_i" not in eq
    data = session_data(COMPLETE, experience=True)
    from bayes_alliance.core.diagnostics import Convergence

    conv = Convergence(1.002, 900.0, 800.0, 0, 0.9, 2000)
    prov = {"draws": 1000, "tune": 800, "chains": 2, "sampler": "nutpie", "random_seed": 11}
    text = report_methods.methods_paragraph(TSPEC, data, prov, conv, 0.95)
    assert "therapist characteristic experience" in text and "a b_T" in text


def test_cli_fit_with_a_therapist_baseline_resolves_auto_and_writes_therapist_rows(tmp_path):
    """A small fit through the command line with the default --baseline-level auto on a
    therapist characteristic: the saved spec says therapist and effects.csv has the
    *_between_therapist rows, with intervals."""
    import json
    import warnings

    import pandas as pd

    from bayes_alliance import simulate
    from bayes_alliance.cli.app import main
    from bayes_alliance.inference.fit import FitResult

    df, truth = simulate(
        seed=8,
        n_therapists=14,
        patients_per_therapist=4,
        sessions=6,
        therapist_baseline_effect_predictor=0.4,
        therapist_baseline_effect_outcome=-0.2,
    )
    assert truth.mediation_therapist["indirect_effect_between_therapist"] == pytest.approx(-0.2)
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "o"
    argv = ["fit", str(csv), "--patient", "patient", "--therapist", "therapist"]
    argv += ["--session", "session", "--predictor", "alliance", "--outcome", "symptoms"]
    argv += ["--covariates", "therapist_baseline", "--baseline", "therapist_baseline"]
    argv += ["--out", str(out), "--draws", "100", "--tune", "150", "--seed", "2", "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(argv)
    assert rc == (0 if json.loads((out / "convergence.json").read_text())["ok"] else 3)
    assert FitResult.load(out / "fit.nc").spec.baseline_level == "therapist"
    eff = pd.read_csv(out / "effects.csv").set_index("parameter")
    assert set(effects.MEDIATION_BETWEEN_THERAPIST) <= set(eff.index)
    assert not set(effects.MEDIATION_BETWEEN) & set(eff.index)
    rows = list(effects.MEDIATION_BETWEEN_THERAPIST)
    assert eff.loc[rows, ["ci_low", "ci_high"]].notna().all().all()
    assert (
        "therapist mean of alliance"
        in eff.loc["baseline_effect_predictor[therapist_baseline]", "label"]
    )
    assert eff.loc["direct_effect_between_therapist", "mean"] == pytest.approx(
        eff.loc["baseline_effect_outcome[therapist_baseline]", "mean"]
    )


def test_prior_of_therapist_paths_is_scaled_by_the_therapists_spread():
    """At therapist level the paths' prior scale is SD(x) / SD(z over therapists), each
    therapist once (not over patients, which weights therapists by caseload)."""
    import pandas as pd

    from bayes_alliance import SessionData
    from bayes_alliance.inference.prior_predictive import prior_predictive
    from bayes_alliance.model.build import build_model
    from tests.conftest import ROLES

    df = pd.DataFrame(ROWS, columns=["therapist", "patient", "session", "x", "y", "moderator"])
    df = df[df["patient"] != "D"]  # T1 treats one patient, T2 two: unequal caseloads
    df["experience"] = df["therapist"].map(EXPERIENCE)
    data = SessionData.from_frame(df, covariates=["experience"], **ROLES)
    prior, _ = prior_predictive(build_model(data, TSPEC), data, TSPEC, 4000, random_seed=1)
    sd_t = np.std(list(EXPERIENCE.values()))  # 3.5; over patients it would be 3.3
    a = prior[v.BASELINE_EFFECT_PREDICTOR]
    assert float(a.std()) == pytest.approx(np.nanstd(data.x) / sd_t, rel=0.04)
