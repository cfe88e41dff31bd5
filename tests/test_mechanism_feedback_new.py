"""Feedback for a patient a mechanism fit does not have (issue 26, item 3).

Truth from outside the code under test: the dense joint Gaussian of every observed cell
(``tests/dense_k.py``, no filter), on a fine grid over the new patient's random lag for the
part that is not Gaussian; draws at fixed parameters (every posterior draw the same point),
so the feedback's draws are Monte Carlo draws of the exact conditional."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dense_k import Baseline, dense_joint, dense_posterior, gaussian_condition
from scipy import stats

from bayes_alliance.core.diagnostics import Convergence
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.feedback.mechanism_feedback import mechanism_feedback
from bayes_alliance.mechanisms.fit import MechanismResult
from bayes_alliance.mechanisms.records import series_provenance
from bayes_alliance.mechanisms.spec import MechanismSpec

ROLES = dict(
    patient="patient", session="session", predictor="alliance", outcome="symptoms", therapist="t"
)
LAG = np.array([[0.4, 0.1], [-0.3, 0.3]])
SIGMA = np.array([[1.0, 0.3], [0.3, 0.8]])
FIRST = np.array([[1.5, 0.4], [0.4, 1.2]])
S_P = np.array([[0.8, -0.3], [-0.3, 0.6]])
S_T = np.array([[0.3, 0.1], [0.1, 0.2]])
MU = np.array([4.0, 2.0])
PATH_SD = 0.4  # the random state effect (symptoms <- alliance)
GAMMA = np.array([[1.5], [-1.0]])
C_J = np.array([0.5, -0.5])  # the therapists' random state effects (therapist_paths)
CROSS_CORR = np.array(
    [[0.6, -0.5]]
)  # of the random lag with the latent means (lag_trait)  # each latent mean's shift per unit of the baseline


def _table(seed: int, n_ther: int, per: int, n_s: int, new_dev: float) -> pd.DataFrame:
    """Patients p00.. of therapists t0.. (one row per session, a few cells missing), drawn from
    the model with the patients' state effects ``LAG[1, 0] + d_i``; patient 'new' of t0 has
    ``d = new_dev``."""
    rng = np.random.default_rng(seed)
    rows = []
    units = [(f"p{j}{i}", f"t{j}") for j in range(n_ther) for i in range(per)]
    units.append(("new", "t0"))
    u = rng.multivariate_normal(np.zeros(2), S_T, size=n_ther)
    for pid, ther in units:
        dev = new_dev if pid == "new" else rng.normal(0, PATH_SD)
        phi = LAG + np.array([[0, 0], [dev, 0]])
        level = MU + u[int(ther[1:])] + rng.multivariate_normal(np.zeros(2), S_P)
        w = rng.multivariate_normal(np.zeros(2), FIRST)
        for s in range(1, n_s + 1):
            if s > 1:
                w = phi @ w + rng.multivariate_normal(np.zeros(2), SIGMA)
            rows.append((ther, pid, s, *(level + w)))
    df = pd.DataFrame(rows, columns=["t", "patient", "session", "alliance", "symptoms"])
    df.loc[(df.patient == "p01") & (df.session == 2), "alliance"] = np.nan
    return df


def _sd_corr(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sd = np.sqrt(np.diag(cov))
    return sd, cov / np.outer(sd, sd)


def _result(
    fitted: pd.DataFrame, devs: np.ndarray | None, n_draws: int, **extra
) -> MechanismResult:
    """A three-level 'fit' whose every draw is the point above (the fitted patients' random
    state effects ``devs``, or no random lags)."""
    covs = tuple(c for c in extra.pop("covariates", ()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SeriesData.from_frame(fitted, **ROLES, covariates=covs)
    paths = () if devs is None else (("outcome", "predictor"),)
    spec = MechanismSpec(therapist_level=True, random_paths=paths, **extra).resolved(data)
    arrays: dict[str, np.ndarray] = {"lag": LAG, "intercept": MU}
    for name, cov in (("innovation", SIGMA), ("first", FIRST), ("patient", S_P)):
        arrays[f"sd_{name}"], arrays[f"corr_{name}"] = _sd_corr(cov)
    arrays["sd_therapist"], arrays["corr_therapist"] = _sd_corr(S_T)
    if devs is not None:
        arrays["sd_paths"] = np.array([PATH_SD])
        arrays["path_deviation"] = devs[:, None]
    if spec.lag_trait_covariance:
        arrays["corr_paths_patient"] = CROSS_CORR
    if spec.therapist_paths:
        arrays["sd_paths_therapist"] = np.array([PATH_SD])
        arrays["path_deviation_therapist"] = C_J[:, None]
        assert devs is not None
        arrays["path_deviation"] = (devs + C_J[data.patient_therapist])[:, None]
    if spec.baseline:
        arrays["baseline_effect"] = GAMMA
    post = xr.Dataset(
        {
            name: (
                ("chain", "draw", *[f"{name}_dim_{i}" for i in range(np.ndim(a))]),
                np.broadcast_to(a, (1, n_draws, *np.shape(a))).copy(),
            )
            for name, a in arrays.items()
        }
    )
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((1, n_draws), dtype=bool)),
            "energy": (("chain", "draw"), np.random.default_rng(0).normal(size=(1, n_draws))),
        }
    )
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    prov = {"random_seed": 1, "spec": spec.to_dict(), **series_provenance(data)}
    return MechanismResult(tree, spec, data, prov, Convergence(1.0, 1e4, 1e4, 0, 1.0, n_draws))


def _dense_inputs(
    df: pd.DataFrame, order: list[str], devs: dict[str, float], lag_trait: bool = False
) -> dict:
    """The dense reference's arguments: patients in ``order``, sessions 1..S as columns, each
    patient's lag matrix with its random state effect ``devs[id]`` (0 without). With
    ``lag_trait`` the latent means covary with the lag, ``(d, b) ~ N(0, [[s_d^2, c'], [c,
    S_P]])``: given d, ``b ~ N(c d / s_d^2, S_P - c c' / s_d^2)`` (Anderson 2003, thm 2.5.1)."""
    n_s = int(df.session.max())
    values = np.zeros((len(order), n_s, 2))
    observed = np.zeros_like(values, dtype=bool)
    ther = []
    for i, pid in enumerate(order):
        mine = df[df.patient == pid]
        cols = mine.session.to_numpy(int) - 1
        z = mine[["alliance", "symptoms"]].to_numpy(float)
        values[i, cols] = np.nan_to_num(z)
        observed[i, cols] = np.isfinite(z)
        ther.append(str(mine.t.iloc[0]))
    codes = {t: j for j, t in enumerate(sorted(set(ther)))}
    phi = np.stack([LAG + np.array([[0, 0], [devs.get(p, 0.0), 0]]) for p in order])
    sigma_p, coef_mean = S_P, None
    if lag_trait:
        cross = CROSS_CORR[0] * PATH_SD * np.sqrt(np.diag(S_P))
        sigma_p = S_P - np.outer(cross, cross) / PATH_SD**2
        coef_mean = np.array([cross * devs.get(p, 0.0) / PATH_SD**2 for p in order])
    return dict(
        values=values,
        observed=observed,
        first=np.zeros(len(order), dtype=int),
        last=np.full(len(order), n_s - 1),
        time=np.zeros((len(order), n_s)),
        mu=MU,
        phi=phi,
        sigma=SIGMA,
        first_cov=FIRST,
        sigma_p=sigma_p,
        omega=np.zeros(2),
        therapist=np.array([codes[t] for t in ther]),
        sigma_t=S_T,
        coef_mean=coef_mean,
    )


def _grid_truth(
    df: pd.DataFrame, devs: dict[str, float], cell: tuple[int, int], lag_trait: bool
) -> dict:
    """Brute force: the posterior of the new patient's random state effect d on a fine grid
    (its N(0, PATH_SD^2) prior times the dense marginal density of the observed cells of its
    therapist's caseload: the other therapists' patients are independent of it given the
    parameters), and the posterior means of d, of its latent levels ``mu + u_j + v_i`` and of
    its state at the missing cell ``cell`` (column, series): E over the grid of their dense
    Gaussian conditionals given d."""
    ther = df.loc[df.patient == "new", "t"].iloc[0]
    df = df[df.t == ther]
    order = sorted(df.patient.unique())
    me, grid = order.index("new"), np.linspace(-5 * PATH_SD, 5 * PATH_SD, 161)
    logw, level, state = [], [], []
    for g in grid:
        args = _dense_inputs(df, order, devs | {"new": g}, lag_trait)
        known = np.zeros((len(order), 2)) if args["coef_mean"] is None else args["coef_mean"]
        # the coefficients' deviations from their known means, given the cells less those
        less = args | {"values": args["values"] - known[:, None, :]}
        less.pop("coef_mean")
        post = dense_posterior(**less)
        level.append(MU + known[me] + post.patient_mean[me] + post.therapist_mean[0])
        # the joint of every cell with the missing one; its seen part gives the density
        full = args["observed"].copy()
        full[me, cell[0], cell[1]] = True
        mean, cov, index = dense_joint(**(args | {"observed": full}))
        y = args["values"][full]
        miss = (index[:, 0] == me) & (index[:, 1] == cell[0]) & (index[:, 2] == cell[1])
        seen = np.flatnonzero(~miss)
        dens = stats.multivariate_normal(mean[seen], cov[np.ix_(seen, seen)]).logpdf(y[seen])
        logw.append(dens - 0.5 * (g / PATH_SD) ** 2)
        _, m_miss, _ = gaussian_condition(mean, cov, seen, y[seen])
        state.append(m_miss[0] - level[-1][cell[1]])
    w = np.exp(np.array(logw) - max(logw))
    w /= w.sum()
    mean_d = float(w @ grid)
    return {
        "d": mean_d,
        "sd_d": float(np.sqrt(w @ (grid - mean_d) ** 2)),
        "level": w @ np.array(level),
        "state": float(w @ np.array(state)),
    }


@pytest.mark.parametrize("lag_trait", [False, True])
def test_new_patient_draws_match_the_grid_over_its_random_lag(lag_trait: bool) -> None:
    """(a) One random lag, a short series with a missing cell, fixed parameters (with
    ``lag_trait`` the lag covarying with the latent means, so that they are drawn given the
    new patient's d as the model says): the means of
    the feedback's draws of the new patient's d, latent levels and state at the missing cell
    match the brute-force grid within Monte Carlo error (z < 4.5, the SEs from the draws'
    SDs: the draws are independent, one importance resample per draw). The posterior mean of
    d is far (> 8 SE) from its prior mean 0, so draws of d from the prior alone (unweighted)
    fail the same check."""
    df = _table(3, 2, 3, 6, new_dev=0.9)
    df.loc[(df.patient == "new") & (df.session == 4), "alliance"] = np.nan
    fitted = df[df.patient != "new"]
    ids = sorted(fitted.patient.unique())
    devs = np.random.default_rng(5).normal(0, PATH_SD, len(ids))
    n = 1000
    result = _result(fitted, devs, n, lag_trait_covariance=lag_trait)
    fb = mechanism_feedback(result, "new", df[df.patient == "new"], n_draws=n)
    fs = fb.states
    truth = _grid_truth(df, dict(zip(ids, devs, strict=True)), (3, 0), lag_trait)
    d = fs.phi[:, 1, 0] - LAG[1, 0]
    se_d = d.std() / np.sqrt(n)
    assert abs(d.mean() - truth["d"]) < 4.5 * se_d, (d.mean(), truth["d"])
    assert abs(truth["d"]) > 8 * se_d  # power against prior draws of d
    assert abs(d.std() / truth["sd_d"] - 1) < 0.1
    level = fs.level[:, fs.row]
    z = (level.mean(0) - truth["level"]) / (level.std(0) / np.sqrt(n))
    assert np.all(np.abs(z) < 4.5), z
    state = fs.states[:, 3, 0]
    assert abs(state.mean() - truth["state"]) < 4.5 * state.std() / np.sqrt(n)
    imp = fb.summary["importance_sampling"]
    assert imp["proposals"] == 256 and 20 < imp["ess_median"] <= 256


def _level_moments(df: pd.DataFrame, centre: float) -> tuple[np.ndarray, np.ndarray]:
    """The dense conditional mean and covariance of the new patient's latent levels
    ``mu + gamma (z - centre) + u_j + v_i`` given every cell of its therapist's caseload (the
    new patient alone for a new therapist), without random lags."""
    ther = df.loc[df.patient == "new", "t"].iloc[0]
    df = df[df.t == ther]
    order = sorted(df.patient.unique())
    args = _dense_inputs(df, order, {})
    args.pop("coef_mean")
    z = df.groupby("patient").age.first()[order].to_numpy()[:, None] - centre
    post = dense_posterior(**args, baseline=Baseline(z, GAMMA))
    me, n_p = order.index("new"), len(order)
    pick = np.zeros((2, post.joint_mean.size))
    pick[:, me * 2 : me * 2 + 2] = np.eye(2)  # v_i
    pick[:, n_p * 2 : n_p * 2 + 2] = np.eye(2)  # u_j (one therapist here)
    mean = MU + GAMMA[:, 0] * z[me, 0] + pick @ post.joint_mean
    return mean, pick @ post.joint_cov @ pick.T


@pytest.mark.parametrize("therapist", ["t0", "t9"])
def test_new_patient_levels_without_random_lags_match_the_dense_conditional(
    therapist: str,
) -> None:
    """(b) Without random lags nothing is weighted: the new patient's latent levels are drawn
    from their Gaussian conditional given the caseload's cells and its own (a known therapist
    t0), or its own alone with a therapist the fit does not have (t9, its part from the
    prior). A patient-level baseline far from the fitted patients' mean checks that the new
    row is centred by the fit's mean (centring over the fitted patients and the new one moves
    the levels by more than 10 SE here). Means within 4.5 SE, covariances within
    5 SEs of a sample covariance (Isserlis)."""
    df = _table(4, 2, 3, 5, new_dev=0.0)
    ages = {p: a for p, a in zip(sorted(df.patient.unique()), np.linspace(-1, 1, 7), strict=True)}
    ages["new"] = 4.0
    df["age"] = df.patient.map(ages)
    df = df[(df.patient != "new") | (df.session <= 3)]  # three sessions so far
    df.loc[df.patient == "new", "t"] = therapist
    fitted = df[df.patient != "new"]
    n = 1500
    result = _result(fitted, None, n, baseline=("age",), covariates=("age",))
    fb = mechanism_feedback(result, "new", df[df.patient == "new"], n_draws=n)
    assert fb.summary["importance_sampling"] is None
    assert fb.summary["new_therapist"] == (therapist == "t9")
    level = fb.states.level[:, fb.states.row]
    mean, cov = _level_moments(df, fitted.groupby("patient").age.first().mean())
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(level.mean(0) - mean) < 4.5 * sd / np.sqrt(n)), (level.mean(0), mean)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(level, rowvar=False) - cov) < 5 * se)


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A saved three-level fit with a random state effect (its draws at one point) and the
    rows of a patient it does not have."""
    df = _table(6, 2, 3, 6, new_dev=0.5)
    fitted = df[df.patient != "new"]
    devs = np.random.default_rng(1).normal(0, PATH_SD, 6)
    folder = tmp_path_factory.mktemp("fit")
    _result(fitted, devs, 20).save(folder / "fit.nc")
    return folder, df[df.patient == "new"]


def _feedback(fit: Path, out: Path, rows: pd.DataFrame, patient: str, tmp: Path) -> int:
    from bayes_alliance.cli.app import main

    csv = tmp / f"{patient}.csv"
    rows.to_csv(csv, index=False)
    argv = ["feedback", str(fit), "--out", str(out), "--allow-unconverged", "--seed", "3"]
    return main([*argv, "--patient", patient, "--new-sessions", str(csv)])


def test_command_writes_the_page_of_a_new_patient(saved_fit, tmp_path: Path) -> None:
    """(c) The command with a new patient's id and rows writes the page; with a therapist the
    fit does not have too (no caseload then); an id the fit has is that patient's new
    sessions, as before."""
    fit, rows = saved_fit
    assert _feedback(fit, tmp_path / "a", rows, "new", tmp_path) == 0
    doc = json.loads((tmp_path / "a" / "feedback.json").read_text())
    assert doc["new_patient"] and not doc["new_therapist"] and doc["therapist"] == "t0"
    assert doc["new_sessions"] == 6 and doc["latest_session"] == 6
    assert doc["importance_sampling"]["proposals"] == 256
    assert doc["trait_percentile"]["caseload"] is not None
    html = (tmp_path / "a" / "feedback.html").read_text()
    assert "was not in the fit" in html and "effective sample size" in html

    other = rows.assign(t="t9")
    assert _feedback(fit, tmp_path / "b", other, "new", tmp_path) == 0
    doc = json.loads((tmp_path / "b" / "feedback.json").read_text())
    assert doc["new_therapist"] and doc["therapist"] == "t9"
    assert doc["trait_percentile"]["caseload"] is None
    assert "Therapist t9 was not in the fit either" in " ".join(doc["sentences"])

    later = rows.assign(patient="p01", session=rows.session + 6, t="t0")
    assert _feedback(fit, tmp_path / "c", later, "p01", tmp_path) == 0
    doc = json.loads((tmp_path / "c" / "feedback.json").read_text())
    assert not doc["new_patient"] and doc["new_sessions"] == 6 and doc["latest_session"] == 12
    assert doc["importance_sampling"] is None


def test_a_new_patient_without_its_therapist_is_named(saved_fit, tmp_path: Path, capsys) -> None:
    fit, rows = saved_fit
    assert _feedback(fit, tmp_path / "o", rows.drop(columns=["t"]), "new", tmp_path) == 2
    err = capsys.readouterr().err
    assert "patient 'new' is new" in err and "['t']" in err
    assert not (tmp_path / "o").exists()
    two = rows.assign(t=["t0", "t1"] * 3)
    assert _feedback(fit, tmp_path / "o", two, "new", tmp_path) == 2
    assert "one therapist in column 't'" in capsys.readouterr().err


def test_new_patient_innovation_sd_matches_the_grid_over_its_offset() -> None:
    """(a') Random innovation SDs, one series, three levels: the new patient's offset
    ``u`` (innovation SD ``sd_e exp(s u)``, ``u ~ N(0, 1)``) is importance-sampled; its mean
    and the new patient's latent level match a grid over ``u`` with the dense marginal density
    of the caseload's cells (z < 4.5). A fluctuating new patient: the posterior mean of ``u``
    is far from the prior's 0."""
    sd_e, s_log, phi, first, s_p, s_t = 0.8, 0.6, 0.5, 1.0, 0.7, 0.3
    rng = np.random.default_rng(8)
    rows, offsets = [], {}
    for j in range(2):
        u_j = rng.normal(0, np.sqrt(s_t))
        for i in range(3 + int(j == 0)):
            pid = "new" if (j, i) == (0, 3) else f"p{j}{i}"
            offsets[pid] = 1.5 if pid == "new" else rng.normal()
            sd = sd_e * np.exp(s_log * offsets[pid])
            level, w = 3.0 + u_j + rng.normal(0, np.sqrt(s_p)), rng.normal(0, np.sqrt(first))
            for t in range(1, 7):
                w = w if t == 1 else phi * w + rng.normal(0, sd)
                rows.append((f"t{j}", pid, t, level + w))
    df = pd.DataFrame(rows, columns=["t", "patient", "session", "alliance"])
    fitted = df[df.patient != "new"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SeriesData.single(
            fitted, patient="patient", session="session", predictor="alliance", therapist="t"
        )
    spec = MechanismSpec(therapist_level=True, random_innovations=True).resolved(data)
    ids = [str(p) for p in data.coords()["patient"]]
    n = 1000
    arrays = {
        "lag": np.array([[phi]]),
        "intercept": np.array([3.0]),
        "sd_innovation": np.array([sd_e]),
        "sd_first": np.array([np.sqrt(first)]),
        "sd_patient": np.array([np.sqrt(s_p)]),
        "sd_therapist": np.array([np.sqrt(s_t)]),
        "sd_log_innovation": np.array([s_log]),
        "log_innovation_offset": np.array([[offsets[p]] for p in ids]),
    }
    post = xr.Dataset(
        {
            k: (
                ("chain", "draw", *[f"{k}_{i}" for i in range(a.ndim)]),
                np.broadcast_to(a, (1, n, *a.shape)).copy(),
            )
            for k, a in arrays.items()
        }
    )
    tree = xr.DataTree.from_dict({"posterior": post})
    prov = {"random_seed": 1, "spec": spec.to_dict(), **series_provenance(data)}
    result = MechanismResult(tree, spec, data, prov, Convergence(1.0, 1e4, 1e4, 0, 1.0, n))
    fb = mechanism_feedback(result, "new", df[df.patient == "new"], n_draws=n)
    fs = fb.states
    u = np.log(fs.sigma[:, 0, 0] / sd_e**2) / (2 * s_log)
    # brute force over the new patient's offset: its caseload (therapist t0) alone matters
    case = df[df.t == "t0"]
    order = sorted(case.patient.unique())
    me = order.index("new")
    values = np.stack([case[case.patient == p].alliance.to_numpy() for p in order])[..., None]
    grid = np.linspace(-5, 5, 201)
    logw, level = [], []
    for g in grid:
        sig = [(sd_e * np.exp(s_log * (g if p == "new" else offsets[p]))) ** 2 for p in order]
        args = dict(
            values=values,
            observed=np.ones_like(values, dtype=bool),
            first=np.zeros(len(order), dtype=int),
            last=np.full(len(order), 5),
            time=np.zeros((len(order), 6)),
            mu=np.array([3.0]),
            phi=np.array([[phi]]),
            sigma=np.array(sig)[:, None, None],
            first_cov=np.array([[first]]),
            sigma_p=np.array([[s_p]]),
            omega=np.zeros(1),
            therapist=np.zeros(len(order), dtype=int),
            sigma_t=np.array([[s_t]]),
        )
        mean, cov, _ = dense_joint(**args)
        logw.append(stats.multivariate_normal(mean, cov).logpdf(values.ravel()) - 0.5 * g**2)
        p = dense_posterior(**args)
        level.append(3.0 + p.patient_mean[me, 0] + p.therapist_mean[0, 0])
    w = np.exp(np.array(logw) - max(logw))
    w /= w.sum()
    se_u = u.std() / np.sqrt(n)
    assert abs(u.mean() - w @ grid) < 4.5 * se_u, (u.mean(), w @ grid)
    assert abs(w @ grid) > 8 * se_u
    lv = fs.level[:, fs.row, 0]
    assert abs(lv.mean() - w @ np.array(level)) < 4.5 * lv.std() / np.sqrt(n)
    assert fb.summary["instability"] is not None


def test_new_patient_with_lags_that_vary_between_therapists() -> None:
    """With the state effect varying between therapists too, a new patient of therapist t0
    has its therapist's ``c_j`` (held at the draw) plus its own deviation; one of a new
    therapist has the therapist's drawn from the prior as well, so its lags spread wider."""
    df = _table(5, 2, 3, 6, new_dev=0.0)
    fitted = df[df.patient != "new"]
    devs = np.random.default_rng(2).normal(0, PATH_SD, 6)
    paths = (("outcome", "predictor"),)
    result = _result(fitted, devs, 300, therapist_paths=paths)
    spread = {}
    for ther in ("t0", "t9"):
        rows = df[df.patient == "new"].assign(t=ther)
        fb = mechanism_feedback(result, "new", rows, n_draws=300)
        assert fb.summary["importance_sampling"]["ess_median"] > 20
        lag = fb.states.phi[:, 1, 0]
        spread[ther] = lag.std()
        if ther == "t0":  # centred near the therapist's lag, its own deviation shrunk to 0
            assert abs(lag.mean() - (LAG[1, 0] + C_J[0])) < 0.5 * PATH_SD
    assert spread["t9"] > spread["t0"]


def test_a_low_effective_sample_size_is_warned_about_and_said() -> None:
    """Four proposals per draw cannot reach an ESS of 20: a warning, the flag in the summary
    and a sentence on the page; 256 (the default) do here, and nothing is said."""
    df = _table(3, 2, 3, 6, new_dev=0.9)
    devs = np.random.default_rng(5).normal(0, PATH_SD, 6)
    result = _result(df[df.patient != "new"], devs, 30)
    rows = df[df.patient == "new"]
    with pytest.warns(RuntimeWarning, match="median effective sample size"):
        fb = mechanism_feedback(result, "new", rows, n_draws=30, n_proposals=4)
    assert fb.summary["importance_sampling"]["low"]
    assert any("low effective sample size" in t for t in fb.sentences)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fb = mechanism_feedback(result, "new", rows, n_draws=30)
    assert not fb.summary["importance_sampling"]["low"]
    assert not any("low effective sample size" in t for t in fb.sentences)


def test_a_therapist_baseline_keeps_the_fits_centring_for_a_new_patient() -> None:
    """A therapist characteristic is centred over therapists (each once) and reaches the end
    outcome through g_T. Adding a new patient centred every row over patients and used g_P,
    so every fitted patient's shifts moved (by 0.05 in the latent means here, and the end
    shifts changed sign); the truth is computed from the table by hand."""
    from test_mechanism_therapist_baseline import _data, _frame

    from bayes_alliance.mechanisms.integrated import EndParams, IntegratedParams
    from bayes_alliance.mechanisms.new_patient import extend, recentred

    df = _frame("two_series", True)
    first = sorted(df.therapist.unique())[0]
    drop = sorted(df[df.therapist == first].patient.unique())[:2]  # uneven caseloads
    df = df[~df.patient.isin(drop)].reset_index(drop=True)
    new_id = sorted(df[df.therapist != first].patient.unique())[0]
    fitted = df[df.patient != new_id].reset_index(drop=True)
    data = _data(fitted, "two_series", True)
    spec = MechanismSpec(therapist_level=True, baseline=("w1",)).resolved(data)
    assert spec.baseline_level == "therapist"
    ext, where = extend(data, spec, series_provenance(data), new_id, df[df.patient == new_id])

    gamma, c_o, g_p, g_t = np.array([[0.5], [0.2]]), 0.4, 1.0, -2.0
    draw = {
        "baseline_effect": gamma,
        "baseline_effect_end": np.array([c_o]),
        "end_trait_effect_patient": np.array(g_p),
        "end_trait_effect_therapist": np.array(g_t),
    }
    end = EndParams(0.0, g_p, None, g_t, 1.0, 0.5)
    params = IntegratedParams(np.zeros(2), None, None, None, None, end=end)
    got = recentred(params, draw, ext, spec, where.centre)

    per_therapist = fitted.groupby("therapist")["w1"].first()
    ids = list(ext.coords()["patient"])
    ther = df.groupby("patient")["therapist"].first()
    w = np.array([per_therapist[ther[p]] - per_therapist.mean() for p in ids])
    np.testing.assert_allclose(got.baseline, w[:, None] * gamma[:, 0][None, :], atol=1e-12)
    np.testing.assert_allclose(got.end.shift, w * (c_o + g_t * gamma[0, 0]), atol=1e-12)
