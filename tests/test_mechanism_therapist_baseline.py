"""A therapist-level baseline in the integrated mechanism model (issue 26 item 2): a therapist
characteristic w_j shifts every series' therapist mean and, with a Gaussian end outcome, the
end outcome directly. The built model's potential against the dense joint Gaussian
(``tests/dense_k.py``, where w_j moves the therapist part that the end outcome regresses on
through g_T), the effects against structural covariances whose regressions are known by
construction, the spec's level and its data checks, the priors' scale over therapists, the
command line and a spec file."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_alliance.cli.app import main
from bayes_alliance.cli.commands import fit_inputs
from bayes_alliance.cli.common import EXIT_NOT_CONVERGED
from bayes_alliance.cli.mechanisms import mechanism_spec
from bayes_alliance.cli.parser import build_parser
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.data.validate import DataValidationError
from bayes_alliance.mechanisms.baseline import between_mediation, draw_shifts
from bayes_alliance.mechanisms.effect_draws import effect_draws
from bayes_alliance.mechanisms.identification import NotIdentifiedError
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.priors import MechanismGrid, mechanism_priors
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.report.labels import mechanism_label
from bayes_alliance.sim.mechanisms import simulate_mechanisms
from bayes_alliance.spec.model_spec import ModelSpec
from tests.dense_k import Baseline, EndOutcome, dense_logp
from tests.model_points import cov_of, potential_at_random_point

N_SESSIONS = 5
W_COLUMNS = ("w1", "w2")


def _frame(design: str, end: bool, seed: int = 11, therapists: int = 4) -> pd.DataFrame:
    """A small three-level table with gaps, uneven series, one patient without an end outcome,
    a patient-level column z and two therapist characteristics w1, w2 (one value per
    therapist, on each of its patients' rows)."""
    df, _ = simulate_mechanisms(
        seed=seed, design=design, n_therapists=therapists, patients_per_therapist=3,
        n_sessions=N_SESSIONS, missing=0.15, change_sd=0.1 if end else 0.0,
        end_effects=(0.5, 1.0) if end else None, end_therapist_sd=0.3 if end else 0.0,
    )  # fmt: skip
    df = df[~((df.patient == "p0001") & (df.session <= 2))]
    df = df[~((df.patient == "p0002") & (df.session >= 4))].reset_index(drop=True)
    if end:
        df.loc[df.patient == "p0003", "post_symptoms"] = np.nan
    rng = np.random.default_rng(seed)
    tids = sorted(df.therapist.unique())
    for col, scale in zip(W_COLUMNS, (1.0, 3.0), strict=True):
        values = 2.0 + scale * rng.normal(size=len(tids))
        df[col] = df.therapist.map(dict(zip(tids, values, strict=True)))
    pids = sorted(df.patient.unique())
    df["z"] = df.patient.map(dict(zip(pids, rng.normal(size=len(pids)), strict=True)))
    return df


def _data(df: pd.DataFrame, design: str, end: bool, therapist: bool = True) -> SeriesData:
    third = {"mediator": "mediator"} if design == "mediation" else {}
    return SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        therapist="therapist" if therapist else None,
        end_outcome="post_symptoms" if end else None, covariates=[*W_COLUMNS, "z"], **third,
    )  # fmt: skip


def _per_therapist(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """The characteristic per therapist (sorted ids), centred over therapists: each therapist
    once, from the table itself."""
    per = df.groupby("therapist")[cols].first().sort_index()
    return (per - per.mean()).to_numpy()


DENSE_CASES = [
    ("two_series", True, ["w1"]),
    ("mediation", False, ["w1", "w2"]),
    ("mediation", True, ["w2"]),
]


@pytest.mark.parametrize(("design", "end", "cols"), DENSE_CASES)
def test_the_potential_with_a_therapist_baseline_is_the_dense_joint_gaussian(design, end, cols):
    df = _frame(design, end)
    data = _data(df, design, end)
    spec = MechanismSpec(
        therapist_level=True, random_paths=(), baseline=tuple(cols), baseline_level="therapist"
    )
    model = build_mechanism_model(data, spec)
    names = [
        "intercept", "lag", "sd_innovation", "corr_innovation", "sd_first", "corr_first",
        "sd_patient", "corr_patient", "sd_therapist", "corr_therapist", "baseline_effect",
    ]  # fmt: skip
    if end:
        names += [
            "trend", "end_intercept", "end_trait_effect_patient", "end_change_effect",
            "end_trait_effect_therapist", "end_sd", "sd_end_therapist", "baseline_effect_end",
        ]  # fmt: skip
    got, v = potential_at_random_point(model, names, seed=3, scale=0.3)
    k = data.k
    assert v["baseline_effect"].shape == (k, len(cols))
    dense_end = None
    if end:
        dense_end = EndOutcome(
            O=data.end_outcome, g0=float(v["end_intercept"]),
            gP=float(v["end_trait_effect_patient"]), sdO=float(v["end_sd"]),
            gT=float(v["end_trait_effect_therapist"]), gS=float(v["end_change_effect"]),
            tauO=float(v["sd_end_therapist"]), cz=v["baseline_effect_end"],
        )  # fmt: skip
    grid = MechanismGrid.of(data)
    observed = np.isfinite(data.z)
    phi = np.broadcast_to(v["lag"], (data.n_patients, k, k))

    def dense(baseline):
        return dense_logp(
            np.where(observed, data.z, 0.0), observed, data.first, data.last, grid.time,
            v["intercept"], phi, cov_of(v, "innovation"), cov_of(v, "first"),
            cov_of(v, "patient"), np.zeros(k), therapist=data.patient_therapist,
            sigma_t=cov_of(v, "therapist"), trend=float(v["trend"]) if end else 0.0,
            end=dense_end, baseline=baseline,
        )  # fmt: skip

    want = dense(Baseline(_per_therapist(df, cols), v["baseline_effect"], level="therapist"))
    assert got == pytest.approx(want, rel=1e-9, abs=1e-7)
    # the therapist level matters: the same shifts on the patient part (the end outcome then
    # regressing on them through g_P) or no shift at all give other densities
    assert abs(dense(None) - want) > 1e-3
    if end:
        rows = _per_therapist(df, cols)[data.patient_therapist]
        as_patient = dense(Baseline(rows, v["baseline_effect"]))
        assert abs(as_patient - want) > 1e-3


def _structural_cov(b: np.ndarray, s_other: np.ndarray, resid: float) -> np.ndarray:
    """The covariance of (the other series' parts, y) with y = b' other + e, var(e) = resid:
    its regression of y on the others is b by construction."""
    n = len(b)
    out = np.zeros((n + 1, n + 1))
    out[:n, :n] = s_other
    out[:n, n] = out[n, :n] = s_other @ b
    out[n, n] = b @ s_other @ b + resid
    return out


def test_therapist_level_mediation_rows_by_hand():
    """Mediator design: Sigma_T built from b_x = -0.5, b_m = 0.3 (known by construction);
    gamma = (a, g_m, total) per column; the end outcome's g_T = 2 and c_O."""
    sigma_t = _structural_cov(np.array([-0.5, 0.3]), np.array([[1.0, 0.4], [0.4, 0.8]]), 0.6)
    gamma = np.array([[0.6, -1.0], [-0.4, 0.2], [0.25, 0.5]])  # (k, q): x, m, y
    c_o = np.array([0.1, -0.3])
    out = between_mediation(
        gamma, sigma_t, ("predictor", "mediator", "outcome"), c_o, np.array(2.0), "therapist"
    )
    a = gamma[0]
    want = {
        "baseline_effect_predictor": a,
        "baseline_effect_mediator": gamma[1],
        "indirect_effect_between_therapist": a * -0.5,
        "indirect_effect_between_therapist_mediator": gamma[1] * 0.3,
        "direct_effect_between_therapist": gamma[2] - a * -0.5 - gamma[1] * 0.3,
        "baseline_effect_outcome": gamma[2] - a * -0.5 - gamma[1] * 0.3,
        "total_effect_between_therapist": gamma[2],
        "proportion_mediated_between_therapist": a * -0.5 / gamma[2],
        "baseline_effect_end": c_o,
        "indirect_effect_between_therapist_end": 2.0 * a,
        "direct_effect_between_therapist_end": c_o,
        "total_effect_between_therapist_end": c_o + 2.0 * a,
        "proportion_mediated_between_therapist_end": 2.0 * a / (c_o + 2.0 * a),
    }
    assert set(out) == set(want)
    for name, val in want.items():
        np.testing.assert_allclose(out[name], val, rtol=1e-12, err_msg=name)


def _dataset(arrays: dict[str, np.ndarray], shape: tuple[int, int]) -> xr.Dataset:
    """One draw's arrays repeated over (chain, draw) = ``shape``."""
    out = {}
    for name, val in arrays.items():
        dims = tuple(f"{name}_{d}" for d in range(np.ndim(val)))
        out[name] = (("chain", "draw", *dims), np.broadcast_to(val, (*shape, *np.shape(val))))
    return xr.Dataset(out)


def test_a_fits_therapist_baseline_rows_use_the_therapist_covariance_and_g_t():
    """Two series with an end outcome: b_T from Sigma_T (by hand 0.7 / 1.4 = 0.5), not from
    Sigma_P (-0.4); onto the end outcome through g_T (not g_P); the joint model's names."""
    df = _frame("two_series", True)
    data = _data(df, "two_series", True)
    spec = MechanismSpec(
        therapist_level=True, random_paths=(), trend=False, baseline=("w1",),
        baseline_level="therapist",
    )  # fmt: skip
    shape = (2, 3)
    rng = np.random.default_rng(2)
    gamma = rng.normal(size=(*shape, 2, 1))

    def sd_corr(cov):
        sd = np.sqrt(np.diag(cov))
        return sd, cov / np.outer(sd, sd)

    sd_p, corr_p = sd_corr(np.array([[1.0, -0.4], [-0.4, 0.9]]))
    sd_t, corr_t = sd_corr(np.array([[1.4, 0.7], [0.7, 0.6]]))
    post = _dataset(
        {
            "lag": np.array([[0.3, 0.0], [-0.2, 0.4]]),
            "sd_innovation": np.ones(2),
            "corr_innovation": np.eye(2),
            "sd_first": np.ones(2),
            "corr_first": np.eye(2),
            "sd_patient": sd_p,
            "corr_patient": corr_p,
            "sd_therapist": sd_t,
            "corr_therapist": corr_t,
            "end_trait_effect_patient": np.array(-3.0),
            "end_trait_effect_therapist": np.array(1.5),
            "end_intercept": np.array(0.0),
            "end_sd": np.array(1.0),
            "baseline_effect_end": np.array([0.2]),
        },
        shape,
    )
    post["baseline_effect"] = (("chain", "draw", "series", "baseline"), gamma)
    out = effect_draws(post, data, spec)
    a, total = gamma[..., 0, 0], gamma[..., 1, 0]
    np.testing.assert_allclose(out["indirect_effect_between_therapist"], 0.5 * a)
    np.testing.assert_allclose(out["direct_effect_between_therapist"], total - 0.5 * a)
    np.testing.assert_allclose(out["indirect_effect_between_therapist_end"], 1.5 * a)
    np.testing.assert_allclose(out["total_effect_between_therapist_end"], 0.2 + 1.5 * a)
    assert "indirect_effect_between" not in out and "indirect_effect_between_end" not in out
    words = {"x": "alliance", "y": "symptoms", "o": "post_symptoms", "z": "w1"}
    label = mechanism_label("indirect_effect_between_therapist_end", words, "two_series")
    assert "therapist mean of alliance" in label and "post_symptoms" in label
    label = mechanism_label("total_effect_between_therapist", words, "mediation")
    assert "therapist mean of symptoms" in label and "{" not in label


def test_a_draws_shifts_move_each_patient_by_its_therapists_centred_value():
    """By hand from the table: w per therapist centred over therapists (not over patients:
    the caseloads differ), the end outcome by (c_O + g_T gamma_x) w_j."""
    df = _frame("two_series", True)
    df = df[~df.patient.isin(["p0004", "p0005"])]  # uneven caseloads (3, 1, 3, 3)
    data = _data(df, "two_series", True)
    draw = {
        "baseline_effect": np.array([[0.5], [-1.0]]),
        "baseline_effect_end": np.array([0.3]),
        "end_trait_effect_patient": np.array(9.0),
        "end_trait_effect_therapist": np.array(2.0),
    }
    mean, end = draw_shifts(draw, data, ("w1",), "therapist")
    per = df.groupby("therapist")["w1"].first()
    w = (per - per.mean())[df.groupby("patient")["therapist"].first().sort_index()].to_numpy()
    np.testing.assert_allclose(mean, np.column_stack([0.5 * w, -1.0 * w]))
    np.testing.assert_allclose(end, (0.3 + 2.0 * 0.5) * w)


def test_the_level_is_resolved_and_checked_against_the_data():
    df = _frame("two_series", False)
    data = _data(df, "two_series", False)
    auto = MechanismSpec(therapist_level=True, baseline=("w1",)).resolved(data)
    assert auto.baseline_level == "therapist"  # constant within every therapist: the joint rule
    assert MechanismSpec(therapist_level=True, baseline=("z",)).resolved(data).baseline_level == (
        "patient"
    )
    # two levels: a therapist characteristic is a patient's covariate
    two = _data(df, "two_series", False, therapist=False)
    assert MechanismSpec(baseline=("w1",)).resolved(two).baseline_level == "patient"
    with pytest.raises(NotIdentifiedError, match="therapist level"):
        MechanismSpec(baseline=("w1",), baseline_level="therapist").resolved(two)
    bad = df.copy()
    tid = sorted(df.therapist.unique())[2]
    bad.loc[bad.patient == sorted(bad[bad.therapist == tid].patient.unique())[0], "w2"] = 99.0
    with pytest.raises(DataValidationError) as err:
        MechanismSpec(
            therapist_level=True, baseline=("w1", "w2"), baseline_level="therapist"
        ).resolved(_data(bad, "two_series", False))
    text = str(err.value)
    assert "'w2'" in text and repr(tid) in text and "'w1'" not in text
    with pytest.raises(NotIdentifiedError, match="baseline_level"):
        MechanismSpec(therapist_level=True, baseline=("w1",), baseline_level="clinic").resolved(
            data
        )
    spec = MechanismSpec(therapist_level=True, random_paths=(), baseline=("w1",))
    assert MechanismSpec.from_dict(spec.resolved(data).to_dict()).baseline_level == "therapist"
    old = spec.to_dict()
    del old["baseline_level"]  # a file written before the therapist level
    assert MechanismSpec.from_dict(old).baseline_level == "patient"


def test_the_priors_scale_by_the_sd_over_therapists():
    df = _frame("two_series", True)
    df = df[~df.patient.isin(["p0004", "p0005"])]  # uneven caseloads
    data = _data(df, "two_series", True)
    spec = MechanismSpec(therapist_level=True, baseline=W_COLUMNS, baseline_level="therapist")
    p = mechanism_priors(data, spec.resolved(data))
    sd_w = df.groupby("therapist")[list(W_COLUMNS)].first().std(ddof=0).to_numpy()
    sd_series = np.array([np.nanstd(df[c]) for c in ("alliance", "symptoms")])
    assert p.baseline is not None and p.baseline.end is not None
    np.testing.assert_allclose(p.baseline.series, sd_series[:, None] / sd_w[None, :])
    o = df.groupby("patient")["post_symptoms"].first().dropna()
    np.testing.assert_allclose(p.baseline.end, np.std(o) / sd_w)


def test_cli_options_carry_a_therapist_level_baseline():
    roles = ("predictor", "mediator", "outcome")
    base = ModelSpec(therapist_level=True, baseline=("w1",), baseline_level="therapist")
    spec = mechanism_spec(base, roles)
    assert spec.baseline == ("w1",) and spec.baseline_level == "therapist"
    assert mechanism_spec(ModelSpec(baseline=("w1",)), roles).baseline_level == "auto"


SPEC_FILE = """name = "therapist_baseline"
description = "a therapist characteristic as a between-level mediator's cause"

[data]
patient = "patient"
therapist = "therapist"
session = "session"
predictor = "alliance"
outcome = "symptoms"
mediator = "mediator"
covariates = ["w1"]

[model]
baseline = ["w1"]
baseline_level = "therapist"

[sampler]
draws = 20
tune = 30
chains = 1
seed = 5
"""


def test_a_spec_file_gives_a_therapist_level_mechanism_model(tmp_path: Path):
    df = _frame("mediation", False)
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    spec_path = tmp_path / "tb.toml"
    spec_path.write_text(SPEC_FILE)
    argv = ["fit", str(csv), "--spec", str(spec_path), "--out", str(tmp_path / "o")]
    args = build_parser().parse_args(argv)
    assert isinstance(args, argparse.Namespace)
    data, spec, _, _ = fit_inputs(args)
    assert isinstance(data, SeriesData) and isinstance(spec, MechanismSpec)
    assert spec.baseline == ("w1",) and spec.resolved(data).baseline_level == "therapist"


@pytest.mark.slow  # one compile and fit: 324 s on the shared 2-core machine
def test_the_cli_fits_and_labels_a_therapist_baseline(tmp_path: Path):
    df = _frame("two_series", True, seed=5, therapists=5)
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "o"
    argv = ["fit", str(csv), "--patient", "patient", "--session", "session", "--therapist"]
    argv += ["therapist", "--predictor", "alliance", "--outcome", "symptoms", "--end-outcome"]
    argv += ["post_symptoms", "--covariates", "w1", "--baseline", "w1", "--baseline-level"]
    argv += ["therapist"]
    argv += ["--draws", "20", "--tune", "30", "--chains", "1", "--seed", "2", "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main([*argv, "--out", str(out)])
    assert rc in (0, EXIT_NOT_CONVERGED)  # a run this short need not converge
    table = pd.read_csv(out / "effects.csv").set_index("parameter")
    for name in (
        "indirect_effect_between_therapist",
        "total_effect_between_therapist",
        "indirect_effect_between_therapist_end",
        "baseline_effect_end",
    ):
        assert name in table.index, name
        assert "{" not in table.loc[name, "label"]
    assert "therapist mean of alliance" in table.loc["baseline_effect_predictor", "label"]
    assert "indirect_effect_between" not in table.index
    report = (out / "report" / "report.md").read_text()
    assert "b_j = characteristic (w1) of therapist j" in report
