"""Cases shared by the likelihood tests: small data sets with gaps and complete series, a
parameter point on the natural scale and its transformed values, and the dense joint Gaussian
reference of every model option (written with plain matrix algebra, :mod:`tests.dense`)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from bayes_alliance import SessionData
from bayes_alliance.model.build import DataScale, GridIndex
from bayes_alliance.spec.model_spec import ModelSpec
from tests import dense
from tests.conftest import ROLES

ROWS = [  # therapist, patient, session, x, y, moderator
    ("T1", "A", 1, 3.0, 1.0, 0.5),
    ("T1", "A", 2, 3.4, 1.2, 0.5),
    ("T1", "A", 4, 2.9, 0.7, 0.5),  # session 3 skipped
    ("T1", "A", 5, 3.3, np.nan, 0.5),
    ("T1", "D", 1, 3.6, 0.4, -1.0),
    ("T1", "D", 2, 3.1, 0.9, -1.0),
    ("T1", "D", 3, 3.2, 0.8, -1.0),
    ("T2", "B", 1, 4.1, 0.2, 1.5),
    ("T2", "B", 2, np.nan, 0.5, 1.5),
    ("T2", "B", 3, 3.8, 0.4, 1.5),
    ("T2", "C", 2, 2.5, 2.0, 0.0),
    ("T2", "C", 3, 2.7, 1.6, 0.0),
    ("T2", "C", 4, 2.2, 1.9, 0.0),
    ("T2", "C", 5, 2.4, 1.5, 0.0),
]
COMPLETE = [r for r in ROWS if r[1] in ("C", "D")] + [
    ("T1", "E", 1, 3.3, 1.1, 0.2),
    ("T1", "E", 2, 3.0, 1.4, 0.2),
    ("T2", "F", 1, 2.8, 1.0, -0.7),
    ("T2", "F", 2, 2.9, 0.6, -0.7),
    ("T2", "F", 3, 3.5, 0.8, -0.7),
]


# A therapist characteristic (constant within therapist) for therapist-level mediation.
EXPERIENCE = {"T1": 4.0, "T2": 11.0}


def session_data(rows, therapist: bool = True, experience: bool = False) -> SessionData:
    import pandas as pd

    df = pd.DataFrame(rows, columns=["therapist", "patient", "session", "x", "y", "moderator"])
    covariates = ["moderator"]
    if experience:
        df["experience"] = df["therapist"].map(EXPERIENCE)
        covariates.append("experience")
    roles = dict(ROLES)
    if not therapist:
        df = df.drop(columns="therapist")
        roles.pop("therapist")
    return SessionData.from_frame(df, covariates=covariates, **roles)


def baseline_known(data: SessionData, spec: ModelSpec, p: dict, i: int) -> np.ndarray:
    """The baseline's shift of patient i's latent means, written out path by path:
    ``(a z, c' z + b a z)`` with, at patient level, z the patient's value centred over patients
    and b = trait_effect_patient (in three-level data split at the therapists: within paths
    with b_P, between paths ``*_between`` with b_T); at therapist level (``spec.baseline_level``), z the value of
    the patient's therapist centred over therapists and b = trait_effect_therapist."""
    a = np.ravel(p["baseline_effect_predictor"])[0]
    c_direct = np.ravel(p["baseline_effect_outcome"])[0]
    zb = data.covariates[spec.baseline[0]].to_numpy(dtype=float)
    if spec.baseline_level == "therapist":
        tj = data.patient_therapist
        per_therapist = np.array([zb[tj == j][0] for j in range(len(data.therapists))])
        z_i = per_therapist[tj[i]] - per_therapist.mean()
        b = float(np.ravel(p["trait_effect_therapist"])[0])
    elif spec.therapist_level and data.patient_therapist is not None:
        # A patient-level baseline of three-level data, split at the therapists: the within
        # part z_i - mean of the therapist's patients (a, c', b_P), the between part that mean
        # less the mean of the therapist means (a_B, c'_B, b_T).
        tj = data.patient_therapist
        means = np.array([zb[tj == j].mean() for j in range(len(data.therapists))])
        z_w, z_b = zb[i] - means[tj[i]], means[tj[i]] - means.mean()
        b_p = float(np.ravel(p["trait_effect_patient"])[0])
        b_t = float(np.ravel(p["trait_effect_therapist"])[0])
        a_b = np.ravel(p["baseline_effect_predictor_between"])[0]
        c_b = np.ravel(p["baseline_effect_outcome_between"])[0]
        mx_i = a * z_w + a_b * z_b
        return np.array([mx_i, c_direct * z_w + b_p * a * z_w + c_b * z_b + b_t * a_b * z_b])
    else:
        z_i = zb[i] - zb.mean()
        b = float(np.ravel(p["trait_effect_patient"])[0])
    mx_i = a * z_i
    return np.array([mx_i, c_direct * z_i + b * mx_i])


def covariate_known(data: SessionData, spec: ModelSpec, p: dict, i: int) -> np.ndarray:
    """The adjusting covariates' shift of patient i's latent means, column by column:
    ``(sum_c g_x,c z_c, sum_c g_y,c z_c)`` with z_c the patient's value centred over patients,
    or, for a column constant within every therapist of a three-level model, the value of the
    patient's therapist centred over therapists."""
    # Every declared covariate that is not a baseline column, unless the spec names them.
    names = spec.covariates or [c for c in data.covariates.columns if c not in spec.baseline]
    out = np.zeros(2)
    for k, c in enumerate(names):
        z = data.covariates[c].to_numpy(dtype=float)
        tj = data.patient_therapist
        by_therapist = (
            spec.therapist_level
            and tj is not None
            and all(len(set(z[tj == j])) == 1 for j in set(tj))
        )
        if by_therapist:
            per_therapist = np.array([z[tj == j][0] for j in range(len(data.therapists))])
            z_i = per_therapist[tj[i]] - per_therapist.mean()
        else:
            z_i = z[i] - z.mean()
        out += z_i * np.array(
            [p["covariate_effect_predictor"][k], p["covariate_effect_outcome"][k]]
        )
    return out


# The natural-scale point at which every likelihood is evaluated.
POINT: dict[str, object] = {
    "sd_patient_predictor": 0.8,
    "sd_patient_outcome": 0.6,
    "trait_effect_patient": -0.4,
    "trait_effect_therapist": 0.7,
    "sd_therapist_predictor": 0.5,
    "sd_therapist_outcome": 0.3,
    "intercept_predictor": 3.0,
    "intercept_outcome": 1.0,
    "predictor_autoregression": 0.3,
    "reverse_state_effect": -0.15,
    "outcome_autoregression": 0.4,
    "state_effect": -0.25,
    "innovation_sd_predictor": 0.5,
    "innovation_sd_outcome": 0.4,
    "innovation_corr": -0.3,
    "same_session_effect": 0.35,
    "sd_state_effect_patient": 0.2,
    "sd_state_effect_therapist": 0.15,
    "moderator_effect": np.array([0.12]),
    "first_sd_predictor": 0.8,
    "first_sd_outcome": 0.6,
    "first_corr": 0.25,
    "trend_predictor": 0.05,
    "trend_outcome": -0.04,
    "sd_trend_predictor": 0.03,
    "sd_trend_outcome": 0.02,
    "baseline_effect_predictor": np.array([0.45]),
    "baseline_effect_outcome": np.array([-0.3]),
    "baseline_effect_predictor_between": np.array([-0.6]),
    "baseline_effect_outcome_between": np.array([0.25]),
    "measurement_error_sd_predictor": 0.35,
    "measurement_error_sd_outcome": 0.25,
    "sd_log_innovation_predictor_patient": 0.3,
    "sd_log_innovation_outcome_patient": 0.2,
    "sd_log_innovation_predictor_therapist": 0.15,
    "sd_log_innovation_outcome_therapist": 0.1,
    "trait_instability_effect": np.array([[0.2, -0.1], [0.05, 0.3]]),
}


def _covariance_form(sd_x: float, sd_res: float, beta: float) -> tuple[float, float]:
    """A level's whole outcome SD and correlation from its regression form, by the moments of
    ``(e_x, beta e_x + e_y)``: Var = beta^2 sd_x^2 + sd_res^2, Cov = beta sd_x^2."""
    var_y = beta**2 * sd_x**2 + sd_res**2
    return float(np.sqrt(var_y)), float(beta * sd_x**2 / np.sqrt(sd_x**2 * var_y))


# The model estimates each trait level as a covariance (SDs and a correlation): the same point.
for _level in ("patient", "therapist"):
    POINT[f"sd_{_level}_outcome_total"], POINT[f"trait_corr_{_level}"] = _covariance_form(
        float(POINT[f"sd_{_level}_predictor"]),  # type: ignore[arg-type]
        float(POINT[f"sd_{_level}_outcome"]),  # type: ignore[arg-type]
        float(POINT[f"trait_effect_{_level}"]),  # type: ignore[arg-type]
    )
# The therapists' slope deviations correlate with their parts of the latent means.
POINT["slope_trait_corr_therapist_predictor"] = 0.4
POINT["slope_trait_partial_corr_therapist_outcome"] = -0.3


def therapist_slope_conditional(p: dict, c_std: np.ndarray, tau_t: np.ndarray):
    """The therapist parts' mean and covariance given the standardised slope deviations
    ``c_std`` (one per therapist), by Gaussian conditioning on the 3 x 3 covariance of
    (x part, y part, slope) built from its correlation matrix."""
    r_xy = float(p["trait_corr_therapist"])
    r_xc = float(p["slope_trait_corr_therapist_predictor"])
    partial = float(p["slope_trait_partial_corr_therapist_outcome"])
    r_yc = partial * np.sqrt((1 - r_xy**2) * (1 - r_xc**2)) + r_xy * r_xc
    corr = np.array([[1.0, r_xy, r_xc], [r_xy, 1.0, r_yc], [r_xc, r_yc, 1.0]])
    sds = np.array([np.sqrt(tau_t[0, 0]), np.sqrt(tau_t[1, 1]), 1.0])  # the slope standardised
    full = corr * np.outer(sds, sds)
    gain = np.linalg.solve(full[2:, 2:], full[2:, :2]).T  # (2, 1)
    means = (gain @ np.atleast_2d(c_std)).T  # therapists x 2
    cond = full[:2, :2] - gain @ full[2:, :2]
    return means, cond


CASES = {
    "three levels": dict(),
    "trend": dict(therapist_level=False, trend=True),
    "session means, session innovations": dict(
        therapist_level=False,
        session_means=True,
        innovations="session",
        first_session="free",
    ),
    "moderator": dict(moderators=("moderator",)),
    "therapist slopes": dict(random_slopes=("therapist",)),
    "therapist slopes with moderator": dict(
        random_slopes=("therapist",), moderators=("moderator",)
    ),
    "lag-0 x->y, patient slopes": dict(
        same_session="predictor_to_outcome", random_slopes=("patient",)
    ),
    "lag-0 y->x, both slopes, moderator": dict(
        same_session="outcome_to_predictor",
        random_slopes=("patient", "therapist"),
        moderators=("moderator",),
    ),
}


def transformed_point(model, natural: dict[str, object]) -> dict[str, np.ndarray]:
    point = {}
    for rv in model.free_RVs:
        val = np.asarray(natural[rv.name], dtype=float)
        tr = model.rvs_to_transforms.get(rv)
        vv = model.rvs_to_values[rv]
        point[vv.name] = (
            tr.forward(pt.as_tensor(val), *rv.owner.inputs).eval() if tr is not None else val
        )
    return point


def natural_point(model, data: SessionData, spec: ModelSpec, rng) -> dict[str, object]:
    nat = dict(POINT)
    n_p, n_s = data.n_patients, len(data.sessions)
    n_t = len(data.therapists) if data.therapists is not None else 0
    nat["therapist_dev_predictor_raw"] = rng.normal(0, 1, n_t)
    nat["therapist_dev_outcome_raw"] = rng.normal(0, 1, n_t)
    nat["state_effect_therapist_raw"] = rng.normal(0, 1, n_t)
    nat["state_effect_patient_raw"] = rng.normal(0, 1, n_p)
    for which in ("predictor", "outcome"):
        nat[f"log_innovation_{which}_patient_raw"] = rng.normal(0, 1, n_p)
        nat[f"log_innovation_{which}_therapist_raw"] = rng.normal(0, 1, n_t)
    nat["trend_predictor_raw"] = rng.normal(0, 1, n_p)
    nat["trend_outcome_raw"] = rng.normal(0, 1, n_p)
    if "covariate" in model.coords:  # adjusting covariates: any effects on the latent means
        n_c = len(model.coords["covariate"])
        nat["covariate_effect_predictor"] = rng.normal(0, 0.5, n_c)
        nat["covariate_effect_outcome"] = rng.normal(0, 0.5, n_c)
    nat["session_mean_predictor"] = 3.0 + rng.normal(0, 0.2, n_s)
    nat["session_mean_outcome"] = 1.0 + rng.normal(0, 0.2, n_s)
    if spec.innovations == "session":
        for name, lo, hi in (
            ("innovation_sd_predictor", 0.3, 0.7),
            ("innovation_sd_outcome", 0.3, 0.7),
            ("innovation_corr", -0.5, 0.5),
        ):
            nat[name] = rng.uniform(lo, hi, n_s - 1)
    if "missing_predictor_cell" in model.coords:  # sampled traits impute missing cells
        nat["missing_predictor_offset"] = rng.normal(
            0, 0.3, len(model.coords["missing_predictor_cell"])
        )
        nat["missing_outcome_offset"] = rng.normal(
            0, 0.3, len(model.coords["missing_outcome_cell"])
        )
    # Sampled traits: latent means (or deviations with session means) at arbitrary values.
    nat["trait_predictor"] = 3.0 + rng.normal(0, 0.5, n_p)
    nat["trait_outcome"] = 1.0 + rng.normal(0, 0.5, n_p)
    nat["patient_dev_predictor"] = rng.normal(0, 0.5, n_p)
    nat["patient_dev_outcome"] = rng.normal(0, 0.5, n_p)
    return nat


def dense_reference(data: SessionData, spec: ModelSpec, nat: dict, traits: str) -> float:
    p = {k: np.asarray(val, dtype=float) for k, val in nat.items()}
    idx, sc = GridIndex.of(data), DataScale.of(data)
    x, y = data.x.copy(), data.y.copy()
    if traits == "sampled":  # imputed cells; integrated: missing cells are marginalised (NaN)
        x[idx.miss_x] = sc.mean_x + p["missing_predictor_offset"]
        y[idx.miss_y] = sc.mean_y + p["missing_outcome_offset"]
    three = spec.therapist_level
    tj = data.patient_therapist if three else np.zeros(data.n_patients, dtype=int)
    a_x = p["sd_therapist_predictor"] * p["therapist_dev_predictor_raw"] if three else np.zeros(1)
    a_y = p["sd_therapist_outcome"] * p["therapist_dev_outcome_raw"] if three else np.zeros(1)
    beta_t = p["trait_effect_therapist"] if three else 0.0
    z = data.covariates["moderator"].to_numpy(dtype=float)
    z = z - z.mean()
    t = (data.sessions - data.sessions[0]).astype(float)
    var_px = p["sd_patient_predictor"] ** 2
    beta_p = p["trait_effect_patient"]
    tau = np.array(
        [
            [var_px, beta_p * var_px],
            [beta_p * var_px, beta_p**2 * var_px + p["sd_patient_outcome"] ** 2],
        ]
    )
    blocks: dict[int, list] = {}
    for i in range(data.n_patients):
        j = tj[i]
        slope = p["state_effect"]
        if spec.moderators:
            slope = slope + p["moderator_effect"][0] * z[i]
        if "therapist" in spec.random_slopes:
            slope = slope + p["sd_state_effect_therapist"] * p["state_effect_therapist_raw"][j]
        if "patient" in spec.random_slopes:
            slope = slope + p["sd_state_effect_patient"] * p["state_effect_patient_raw"][i]
        phi = np.array([[0.3, -0.15 if spec.reverse_lag else 0.0], [slope, 0.4]])

        def log_dev(which: str, i: int = i, j: int = j) -> float:
            dev = (
                p[f"sd_log_innovation_{which}_patient"]
                * p[f"log_innovation_{which}_patient_raw"][i]
            )
            if "therapist" in spec.random_innovations:
                dev = dev + (
                    p[f"sd_log_innovation_{which}_therapist"]
                    * p[f"log_innovation_{which}_therapist_raw"][j]
                )
            return float(dev)

        def base_sigma(k: int) -> np.ndarray:
            if spec.same_session != "none":
                scale = [1.0, 1.0]
                if spec.random_innovations:
                    scale = [np.exp(log_dev("predictor")), np.exp(log_dev("outcome"))]
                return np.diag([0.25 * scale[0] ** 2, 0.16 * scale[1] ** 2])
            sx = p["innovation_sd_predictor"].ravel()[k]
            sy = p["innovation_sd_outcome"].ravel()[k]
            r = p["innovation_corr"].ravel()[k]
            if spec.random_innovations:  # this patient's (and therapist's) log-SD deviations
                sx = sx * np.exp(log_dev("predictor"))
                sy = sy * np.exp(log_dev("outcome"))
            return np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]])

        cols = np.arange(data.first[i], data.last[i] + 1)
        sigmas = []
        for col in cols[1:]:
            k = col - 1 if spec.innovations == "session" else 0
            ph, sg = dense.reduced(phi, base_sigma(k), 0.35, spec.same_session)
            sigmas.append(sg)
        ph, sg0 = dense.reduced(phi, base_sigma(0), 0.35, spec.same_session)
        first = (
            dense.stationary(ph, sg0)
            if spec.first_session == "stationary"
            else np.array([[0.64, 0.25 * 0.8 * 0.6], [0.25 * 0.8 * 0.6, 0.36]])
        )
        cov = dense.series_cov(ph, sigmas, first)
        n = len(cols)
        if spec.measurement_error:  # independent error in every cell: observed = M + w + eps
            omega = [p["measurement_error_sd_predictor"], p["measurement_error_sd_outcome"]]
            cov = cov + np.kron(np.eye(n), np.diag(np.square(omega)))
        # Mean of each cell: the known part (intercept or session mean, trend) plus the latent
        # mean's prior mean (integrated) or the latent mean itself (sampled).
        if spec.session_means:
            known = np.column_stack(
                [p["session_mean_predictor"][cols], p["session_mean_outcome"][cols]]
            )
        else:
            known = np.tile([p["intercept_predictor"], p["intercept_outcome"]], (n, 1))
        trend = np.zeros((n, 2))
        if spec.trend:
            sx = p["trend_predictor"] + p["sd_trend_predictor"] * p["trend_predictor_raw"][i]
            sy = p["trend_outcome"] + p["sd_trend_outcome"] * p["trend_outcome_raw"][i]
            trend = np.column_stack([sx * t[cols], sy * t[cols]])
        if spec.baseline:
            # Between-level mediation: the latent means' prior means move by a z and by
            # (c' + b a) z (b the trait effect at the baseline's level).
            known = known + baseline_known(data, spec, p, i)
        if "covariate_effect_predictor" in p:
            known = known + covariate_known(data, spec, p, i)
        if spec.random_innovations:  # the traits' shift by the patient's instability G u_i
            u = np.array(
                [
                    p["log_innovation_predictor_patient_raw"][i],
                    p["log_innovation_outcome_patient_raw"][i],
                ]
            )
            known = known + p["trait_instability_effect"] @ u
        if traits == "integrated":
            # Latent mean integrated out; the therapist part too (below, over the caseload).
            mean = known + trend
            cov = cov + np.kron(np.ones((n, n)), tau)
        elif spec.session_means:
            dev = [p["patient_dev_predictor"][i], p["patient_dev_outcome"][i]]
            mean = known + trend + np.array(dev) + np.array([a_x[j], a_y[j] + beta_t * a_x[j]])
        else:
            mean = np.tile([p["trait_predictor"][i], p["trait_outcome"][i]], (n, 1)) + trend
        w = np.column_stack([x[i, cols], y[i, cols]])
        blocks.setdefault(j, []).append((w.ravel(), mean.ravel(), cov))

    def observed(w: np.ndarray, m: np.ndarray, c: np.ndarray) -> float:
        keep = ~np.isnan(w)
        return dense.mvn_logpdf(w[keep], m[keep], c[np.ix_(keep, keep)])

    if traits == "sampled" or not three:
        return sum(observed(w, m, c) for b in blocks.values() for w, m, c in b)
    # A therapist's whole caseload is one Gaussian: the therapist part of the latent means,
    # covariance tau_t, is shared by every cell of every patient of the therapist.
    var_tx = p["sd_therapist_predictor"] ** 2
    tau_t = np.array(
        [
            [var_tx, beta_t * var_tx],
            [beta_t * var_tx, beta_t**2 * var_tx + p["sd_therapist_outcome"] ** 2],
        ]
    )
    shift = np.zeros((len(blocks), 2))
    if "therapist" in spec.random_slopes:  # the parts given the therapist's slope deviation
        shift, tau_t = therapist_slope_conditional(p, p["state_effect_therapist_raw"], tau_t)
    total = 0.0
    for j, b in blocks.items():
        w = np.concatenate([e[0] for e in b])
        mean = np.concatenate([e[1] for e in b]) + np.tile(shift[j], w.size // 2)
        cov = np.zeros((w.size, w.size))
        at = 0
        for e in b:
            cov[at : at + e[0].size, at : at + e[0].size] = e[2]
            at += e[0].size
        cov = cov + np.kron(np.ones((w.size // 2, w.size // 2)), tau_t)
        total += observed(w, mean, cov)
    return total
