"""Data shipped with the package (no downloads).

``example.csv`` was drawn once by :func:`bayes_alliance.sim.sessions.simulate` with the settings and
seed recorded in ``example.json``; :func:`regenerate_example` redraws it from that record.
``mediation_between.csv`` (record ``mediation_between.json``) is a two-level data set for
between-level mediation by a patient baseline, drawn so that a two-level SEM with independent
sessions is the true model; it is the input of the lavaan reference check
(``benchmarks/lavaan_mediation.R``, ``tests/test_mediation_lavaan.py``).
``mediation_within.csv`` and ``informants.csv`` (records ``.json`` beside them) were drawn by
:func:`bayes_alliance.sim.mechanisms.simulate_mechanisms` for the mechanism models: a lagged
within-patient mediation alliance -> emotional processing -> symptoms with random a and b paths
and a post-treatment score, and patient- and therapist-rated alliance with symptoms.
"""

from __future__ import annotations

import json
import warnings
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.kernels.moments import stationary_cov
from bayes_alliance.mechanisms import effects as me
from bayes_alliance.mechanisms.spec import path_name, random_lag_row
from bayes_alliance.sim.mechanisms import MechanismTruth, simulate_mechanisms
from bayes_alliance.sim.sessions import simulate
from bayes_alliance.sim.truth import Truth

EXAMPLE_ROLES = {
    "patient": "patient",
    "therapist": "therapist",
    "session": "session",
    "predictor": "alliance",
    "outcome": "symptoms",
}

# The record behind example.csv: sizes like a clinic registry (about 40 therapists, 6-10 patients
# each, 8-20 sessions), some skipped sessions, missing ratings and dropout, a moderator and a
# therapist-rated alliance.
EXAMPLE_SETTINGS: dict[str, Any] = {
    "n_therapists": 40,
    "patients_per_therapist": [6, 10],
    "sessions": [8, 20],
    "p_missing_session": 0.06,
    "p_missing_value": 0.03,
    "dropout": 0.15,
    "moderator": True,
    "moderator_effect": 0.05,
    "sd_state_effect_patient": 0.05,
    "sd_state_effect_therapist": 0.03,
    "informant": True,
}
EXAMPLE_SEED = 20261126


def _files() -> Any:
    return resources.files("bayes_alliance.datasets")


def load_example() -> pd.DataFrame:
    """The example data: alliance and symptoms of about 320 patients of 40 therapists.

    Columns: ``therapist, patient, session, alliance, symptoms, moderator, alliance_therapist``.
    Use the roles in :data:`EXAMPLE_ROLES`; :func:`example_record` gives the true parameters.
    """
    with _files().joinpath("example.csv").open("r") as fh:
        return pd.read_csv(fh)


def example_record() -> dict[str, Any]:
    """Settings, seed and analytic truth the example data were drawn with."""
    with _files().joinpath("example.json").open("r") as fh:
        out: dict[str, Any] = json.load(fh)
        return out


def regenerate_example() -> tuple[pd.DataFrame, Truth]:
    """Redraw the example data from the recorded settings and seed."""
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in EXAMPLE_SETTINGS.items()}
    return simulate(seed=EXAMPLE_SEED, **settings)


def write_example(folder: str) -> None:
    """Write ``example.csv`` and ``example.json`` into ``folder`` (maintainers only).

    ``python -c "import bayes_alliance.datasets as d; d.write_example('bayes_alliance/datasets')"``
    """
    import pathlib

    df, truth = regenerate_example()
    path = pathlib.Path(folder)
    df.to_csv(path / "example.csv", index=False, float_format="%.6f")
    (path / "example.json").write_text(truth.to_json() + "\n")


MEDIATION_ROLES = {
    "patient": "patient",
    "session": "session",
    "predictor": "alliance",
    "outcome": "symptoms",
    "covariates": ["baseline"],
}

# The record behind mediation_between.csv: 200 patients x 10 complete sessions, no therapist level
# (one therapist with zero variance, column dropped), and no within-person dynamics (lags and
# cross-lags 0), so sessions are independent around the patient's latent means with a within
# covariance of x and y: exactly the two-level SEM lavaan fits. The between level is the
# mediation a: baseline -> latent mean of x, b: latent mean of x -> latent mean of y, c':
# baseline -> latent mean of y (ab = -0.2, total -0.45).
MEDIATION_SETTINGS: dict[str, Any] = {
    "n_therapists": 1,
    "patients_per_therapist": 200,
    "sessions": 10,
    "sd_therapist_predictor": 0.0,
    "sd_therapist_outcome": 0.0,
    "predictor_autoregression": 0.0,
    "outcome_autoregression": 0.0,
    "state_effect": 0.0,
    "reverse_state_effect": 0.0,
    "innovation_corr": -0.3,
    "baseline_effect_predictor": 0.4,
    "baseline_effect_outcome": -0.25,
    "trait_effect_patient": -0.5,
}
MEDIATION_SEED = 20261213


def load_mediation() -> pd.DataFrame:
    """Two-level mediation data: alliance and symptoms of 200 patients x 10 sessions and a
    standard normal patient ``baseline``.

    Columns: ``patient, session, alliance, symptoms, baseline``; roles in
    :data:`MEDIATION_ROLES`, truth in :func:`mediation_record`.
    """
    with _files().joinpath("mediation_between.csv").open("r") as fh:
        return pd.read_csv(fh)


def mediation_record() -> dict[str, Any]:
    """Settings, seed and analytic truth the mediation data were drawn with."""
    with _files().joinpath("mediation_between.json").open("r") as fh:
        out: dict[str, Any] = json.load(fh)
        return out


def regenerate_mediation() -> tuple[pd.DataFrame, Truth]:
    """Redraw the mediation data from the recorded settings and seed (therapist column dropped)."""
    with warnings.catch_warnings():
        # One therapist with zero variance: the therapist-level standardised effect is 0 / 0.
        warnings.simplefilter("ignore", RuntimeWarning)
        df, truth = simulate(seed=MEDIATION_SEED, **MEDIATION_SETTINGS)
    return df.drop(columns="therapist"), truth


def write_mediation(folder: str) -> None:
    """Write ``mediation_between.csv`` and ``mediation_between.json`` into ``folder``
    (maintainers only)."""
    import pathlib

    df, truth = regenerate_mediation()
    path = pathlib.Path(folder)
    df.to_csv(path / "mediation_between.csv", index=False, float_format="%.6f")
    # Strict JSON: the therapist level's R-squared shares are 0 / 0 here (NaN -> null).
    record = json.loads(truth.to_json(), parse_constant=lambda _: None)
    (path / "mediation_between.json").write_text(json.dumps(record, indent=2) + "\n")


# --- Mechanism models: within-level mediation and two informants ----------------------------

MEDIATION_WITHIN_ROLES = {
    "patient": "patient",
    "therapist": "therapist",
    "session": "session",
    "predictor": "alliance",
    "mediator": "emotional_processing",
    "outcome": "symptoms",
    "end_outcome": "post_symptoms",
}

# The record behind mediation_within.csv: 20 therapists x 6 patients x 12 sessions, 3% of the
# cells missing at random. Lagged 1-1-1 mediation alliance_t -> processing_(t+1) ->
# symptoms_(t+2) with a = .3, b = -.3, c' = -.1; a and b vary between patients (SD .25 each)
# with correlation .7, so E[a_i b_i] = ab + cov(a, b) = -.09 + .044 = -.046. Each patient's
# alliance also drifts linearly (slope SD .15 per session: the state-like change), and a
# post-treatment symptom score depends on the trait-like alliance (-.5 per point) and on that
# change (-2 per point of slope).
MEDIATION_WITHIN_SETTINGS: dict[str, Any] = {
    "design": "mediation",
    "n_therapists": 20,
    "patients_per_therapist": 6,
    "n_sessions": 12,
    "path_sd": [0.25, 0.25],
    "path_corr": 0.7,
    "change_sd": 0.15,
    "end_effects": [-0.5, -2.0],
    "missing": 0.03,
}
MEDIATION_WITHIN_SEED = 20261220

INFORMANTS_ROLES = {
    "patient": "patient",
    "therapist": "therapist",
    "session": "session",
    "predictor": "alliance",
    "second_predictor": "alliance_therapist",
    "outcome": "symptoms",
}

# The record behind informants.csv: 20 therapists x 6 patients x 12 sessions, 3% missing.
# Patient-rated (alliance) and therapist-rated (alliance_therapist) alliance, traits correlated
# .5; the patient-level regression of the symptom trait on both traits is -.5 (patient-rated)
# and 0 (therapist-rated): the therapist's trait-like rating adds nothing. Both states predict
# next-session symptoms equally (-.2 each), and each rating's state carries over a little to
# the other's (.1). The seed is a representative draw: of ten consecutive seeds, the one whose
# observed patient-mean regression and rating correlation were nearest their median.
INFORMANTS_SETTINGS: dict[str, Any] = {
    "design": "informants",
    "n_therapists": 20,
    "patients_per_therapist": 6,
    "n_sessions": 12,
    "lag": [[0.3, 0.1, 0.0], [0.1, 0.3, 0.0], [-0.2, -0.2, 0.3]],
    "trait_effects": [-0.5, 0.0],
    "missing": 0.03,
}
INFORMANTS_SEED = 20261223


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    out = dict(settings)
    if "lag" in out:
        out["lag"] = np.array(out["lag"], dtype=float)
    for key in ("path_sd", "end_effects", "trait_effects"):
        if key in out:
            out[key] = tuple(out[key])
    return out


def _order(df: pd.DataFrame, roles: dict[str, str]) -> pd.DataFrame:
    cols = [roles[r] for r in ("therapist", "patient", "session")]
    return df[cols + [c for c in df.columns if c not in cols]]


def regenerate_mediation_within() -> tuple[pd.DataFrame, MechanismTruth]:
    """Redraw ``mediation_within.csv`` from the recorded settings and seed (the simulator's
    ``mediator`` column named ``emotional_processing``)."""
    df, truth = simulate_mechanisms(
        seed=MEDIATION_WITHIN_SEED, **_settings(MEDIATION_WITHIN_SETTINGS)
    )
    df = df.rename(columns={"mediator": MEDIATION_WITHIN_ROLES["mediator"]})
    return _order(df, MEDIATION_WITHIN_ROLES), truth


def regenerate_informants() -> tuple[pd.DataFrame, MechanismTruth]:
    """Redraw ``informants.csv`` from the recorded settings and seed."""
    df, truth = simulate_mechanisms(seed=INFORMANTS_SEED, **_settings(INFORMANTS_SETTINGS))
    return _order(df, INFORMANTS_ROLES), truth


def _patient_trait_cov(truth: MechanismTruth) -> np.ndarray:
    """Joint patient-level covariance of the traits (outcome last) the simulator implies."""
    c = truth.trait_cov_predictors
    beta = truth.trait_effects
    cy = c @ beta
    top = np.column_stack([c, cy])
    bottom = np.append(cy, beta @ c @ beta + truth.trait_residual_sd**2)
    return np.vstack([top, bottom])


def true_effects(truth: MechanismTruth) -> dict[str, float]:
    """The derived effects the generating values imply, named as in
    :meth:`bayes_alliance.mechanisms.fit.MechanismResult.effects` (population values: the random
    paths' covariance, not the drawn patients' sample covariance)."""
    lag = truth.lag
    patient = _patient_trait_cov(truth)
    # The simulator's therapist effects are independent between series: no therapist-level
    # trait relation, so every therapist-level trait effect is 0.
    therapist = np.diag(truth.therapist_sd**2)
    out: dict[str, Any] = {
        "predictor_autoregression": lag[0, 0],
        "outcome_autoregression": lag[-1, -1],
        "reverse_state_effect": lag[0, -1],
    }
    if truth.design == "mediation":
        out["mediator_autoregression"] = lag[1, 1]
        out["state_effect"] = lag[2, 0]
        out.update(me.within_mediation(lag, truth.path_cov, truth.random_paths, 0, 1, 2))
        for (to, source), sd in zip(
            truth.random_paths, np.sqrt(np.diag(truth.path_cov)), strict=True
        ):
            names = ("predictor", "mediator", "outcome")
            out[random_lag_row(path_name(names[to], names[source]))] = sd
        for level, cov in (("patient", patient), ("therapist", therapist)):
            beta = me.trait_regression(cov)
            out[f"trait_effect_{level}"] = beta[0]
            out[f"trait_effect_{level}_mediator"] = beta[1]
    else:
        out["second_autoregression"] = lag[1, 1]
        # The simulator starts every series at stationarity (a burn-in) with no random paths:
        # the within-person variances are the stationary ones.
        state_var = np.diag(stationary_cov(lag, truth.innovation_cov))
        out.update(me.informant_effects(lag, truth.innovation_cov, patient, therapist, state_var))
    if truth.end:
        # Each part of trait-like alliance per SD of its own level.
        trait = {"end_trait_effect_patient": (truth.end["trait_effect"], np.sqrt(patient[0, 0]))}
        if truth.therapist_sd[0] > 0:
            trait["end_trait_effect_therapist"] = (
                truth.end.get("therapist_trait_effect", truth.end["trait_effect"]),
                truth.therapist_sd[0],
            )
        out.update(
            me.end_outcome_effects(
                {k: (np.asarray(e), np.asarray(sd)) for k, (e, sd) in trait.items()},
                np.asarray(truth.end["change_effect"]),
                np.asarray(truth.change_sd),
                bool(truth.end["binary"]),
            )
        )
    return {k: round(float(v), 12) for k, v in out.items()}


def mechanism_record(truth: MechanismTruth, settings: dict[str, Any], seed: int) -> dict[str, Any]:
    """The JSON record of a mechanism data set: settings, seed, generating values, true effects
    and, with random paths, the drawn patients' sample mean of a_i b_i."""
    params: dict[str, Any] = {
        "lag": truth.lag.tolist(),
        "innovation_cov": truth.innovation_cov.tolist(),
        "trait_effects": truth.trait_effects.tolist(),
        "trait_cov_predictors": truth.trait_cov_predictors.tolist(),
        "trait_residual_sd": truth.trait_residual_sd,
        "patient_trait_cov": _patient_trait_cov(truth).tolist(),
        "therapist_sd": truth.therapist_sd.tolist(),
        "random_paths": [list(p) for p in truth.random_paths],
        "path_cov": truth.path_cov.tolist(),
        "change_sd": truth.change_sd,
        "end": truth.end,
    }
    record: dict[str, Any] = {
        "params": params,
        "design": {**settings, "columns": list(truth.columns)},
        "seed": seed,
        "effects": true_effects(truth),
    }
    if truth.random_paths:
        record["sample"] = {"indirect_effect_within": truth.expected_indirect()}
    return record


def _load(name: str) -> pd.DataFrame:
    with _files().joinpath(name).open("r") as fh:
        return pd.read_csv(fh)


def _record(name: str) -> dict[str, Any]:
    with _files().joinpath(name).open("r") as fh:
        out: dict[str, Any] = json.load(fh)
        return out


def load_mediation_within() -> pd.DataFrame:
    """Within-patient mediation data: alliance, emotional processing and symptoms of 120
    patients (20 therapists x 6) over 12 sessions, and a post-treatment symptom score.

    Columns: ``therapist, patient, session, alliance, emotional_processing, symptoms,
    post_symptoms`` (``post_symptoms`` repeated on every row of a patient); roles for
    :meth:`~bayes_alliance.data.series_data.SeriesData.from_frame` in
    :data:`MEDIATION_WITHIN_ROLES`, truth in :func:`mediation_within_record`.
    """
    return _load("mediation_within.csv")


def mediation_within_record() -> dict[str, Any]:
    """Settings, seed, generating values and true effects of the within-mediation data."""
    return _record("mediation_within.json")


def load_informants() -> pd.DataFrame:
    """Two informants' alliance ratings and symptoms of 120 patients (20 therapists x 6) over
    12 sessions.

    Columns: ``therapist, patient, session, alliance, alliance_therapist, symptoms``
    (``alliance`` patient-rated, ``alliance_therapist`` therapist-rated); roles in
    :data:`INFORMANTS_ROLES`, truth in :func:`informants_record`.
    """
    return _load("informants.csv")


def informants_record() -> dict[str, Any]:
    """Settings, seed, generating values and true effects of the two-informant data."""
    return _record("informants.json")


def write_mechanism_data(folder: str) -> None:
    """Write ``mediation_within.csv`` / ``.json`` and ``informants.csv`` / ``.json`` into
    ``folder`` (maintainers only)."""
    import pathlib

    path = pathlib.Path(folder)
    for name, regen, settings, seed in (
        (
            "mediation_within",
            regenerate_mediation_within,
            MEDIATION_WITHIN_SETTINGS,
            MEDIATION_WITHIN_SEED,
        ),
        ("informants", regenerate_informants, INFORMANTS_SETTINGS, INFORMANTS_SEED),
    ):
        df, truth = regen()
        df.to_csv(path / f"{name}.csv", index=False, float_format="%.6f")
        record = mechanism_record(truth, settings, seed)
        (path / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
