"""Power-scaling prior sensitivity (issue 25, item 1): the log prior per draw is the fitted
model's prior, and a deliberately tight prior is flagged while default ones are not."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import stats

from bayes_alliance import SessionData, simulate
from bayes_alliance.analysis.sensitivity import (
    FINE,
    PRIOR_SENSITIVE,
    THRESHOLD,
    diagnosis,
    prior_sensitivity,
)
from bayes_alliance.inference.log_prior import log_prior
from bayes_alliance.model.build import build_model
from bayes_alliance.model.priors import DataScale
from bayes_alliance.spec.model_spec import ModelSpec

ROLES = dict(patient="patient", session="session", predictor="alliance", outcome="symptoms")
TIGHT = {"state_effect": {"dist": "Normal", "mu": 0.0, "sigma": 0.01}}


def _data(n_therapists: int = 8) -> SessionData:
    df, _ = simulate(seed=5, n_therapists=n_therapists, patients_per_therapist=5, sessions=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(df.drop(columns="therapist"), **ROLES)


def test_log_prior_is_each_parameters_prior_density() -> None:
    """At draws from the prior, the log prior equals scipy's densities of the priors the
    spec asks for: the override's Normal(0, 0.01), the default half-normal of an SD scaled to
    the data's SD, the uniform on (-1, 1) of a correlation."""
    data = _data(2)
    spec = ModelSpec(therapist_level=False, priors=TIGHT)
    model = build_model(data, spec)
    draws = pm.draw(model.free_RVs, draws=12, random_seed=1)
    post = xr.Dataset(
        {
            rv.name: (
                ("chain", "draw", *[f"{rv.name}_{k}" for k in range(val.ndim - 1)]),
                val[None],
            )
            for rv, val in zip(model.free_RVs, draws, strict=True)
        }
    )
    lp = log_prior(post, data, spec)
    sd_y = DataScale.of(data).sd_y
    cases = {
        "state_effect": stats.norm(0, 0.01),
        "sd_patient_outcome_total": stats.halfnorm(scale=sd_y),
        "innovation_corr": stats.uniform(-1, 2),
    }
    for name, dist in cases.items():
        want = dist.logpdf(post[name].values)
        # rtol: the uniform's constant log density comes back in single precision
        np.testing.assert_allclose(lp[name].values, want, rtol=1e-7, err_msg=name)
    assert set(lp.data_vars) <= set(spec.prior_names())


def test_diagnosis_words_follow_psense_threshold() -> None:
    below, above = THRESHOLD / 2, THRESHOLD * 2
    assert diagnosis(above, below) == f"{PRIOR_SENSITIVE}, likelihood weak"
    assert diagnosis(above, above) == f"{PRIOR_SENSITIVE}: prior-data conflict"
    assert diagnosis(below, above) == FINE
    assert diagnosis(below, below) == "likelihood weak"


@pytest.fixture(scope="module")
def tight_fit():
    from bayes_alliance.inference.fit import fit

    spec = ModelSpec(therapist_level=False, priors=TIGHT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(_data(), spec, draws=300, tune=300, chains=2, random_seed=1, progressbar=False)


def test_a_tight_prior_is_flagged_and_default_priors_are_not(tight_fit) -> None:
    """state_effect under Normal(0, 0.01) (its posterior SD with the default prior is about
    0.05 here) depends on its prior; the paths under wide default priors do not."""
    t = prior_sensitivity(tight_fit).table
    assert t.loc["state_effect", "prior"] >= THRESHOLD
    assert t.loc["state_effect", "diagnosis"].startswith(PRIOR_SENSITIVE)
    for name in ("reverse_state_effect", "trait_effect_patient"):
        assert t.loc[name, "prior"] < THRESHOLD, name
        assert t.loc[name, "diagnosis"] == FINE, name
    assert "sd_therapist_predictor" not in t.index  # a two-level fit has no therapist SDs


def test_report_section_names_the_prior_sensitive_estimate(tight_fit) -> None:
    from bayes_alliance.report.sensitivity import sensitivity_section

    section = sensitivity_section(tight_fit)
    frame = section.tables[0].frame
    assert frame.loc["state_effect", "diagnosis"].startswith(PRIOR_SENSITIVE)
    assert "Not determined by the data alone: state_effect;" in " ".join(section.paragraphs)
    assert any(
        p.startswith("Computed when this report was written, in ") for p in section.paragraphs
    )
