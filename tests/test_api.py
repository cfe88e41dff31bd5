"""The one-call entry point, the package's public names, short views and drawn seeds."""

from __future__ import annotations

import numpy as np
import pytest

import bayes_alliance as ba
from bayes_alliance.datasets import EXAMPLE_ROLES


@pytest.fixture(scope="module")
def small_frame():
    df, _ = ba.simulate(seed=5, n_therapists=5, patients_per_therapist=6, sessions=8)
    return df


@pytest.fixture(scope="module")
def drawn_seed_fit(small_frame):
    with pytest.warns(Warning):  # few therapists; a short run may not converge
        return ba.fit_frame(small_frame, **EXAMPLE_ROLES, draws=100, tune=150, progressbar=False)


def test_public_names_resolve():
    for name in ba.__all__:
        assert getattr(ba, name) is not None, name
    assert "fit_frame" in dir(ba)
    with pytest.raises(AttributeError):
        _ = ba.no_such_name


def test_unknown_option_names_the_closest():
    with pytest.raises(ValueError, match="random_slopes"):
        ba.fit_frame(
            ba.simulate(seed=1, n_therapists=2, patients_per_therapist=3, sessions=4)[0],
            **EXAMPLE_ROLES,
            random_slope=("patient",),
        )


def test_options_reach_the_spec():
    from bayes_alliance.data.roles import Roles
    from bayes_alliance.inference.api import model_spec

    roles = Roles("p", "s", "x", "y", therapist="t", covariates=("z",))
    spec = model_spec(None, roles, {"random_slopes": "patient", "first_session": "free"})
    assert spec.random_slopes == ("patient",) and spec.first_session == "free"
    assert spec.therapist_level
    again = model_spec(spec, roles, {"trend": True})
    assert again.trend and again.random_slopes == ("patient",)
    # the command line's rules: value types and moderators among the covariates
    with pytest.raises(ValueError, match="first_session"):
        model_spec(None, roles, {"first_session": "sometimes"})
    with pytest.raises(ValueError, match="covariates"):
        model_spec(None, roles, {"moderators": ("w",)})


def test_drawn_seed_is_recorded_and_repeats(drawn_seed_fit, small_frame):
    r = drawn_seed_fit
    assert r.provenance["seed_drawn"] is True
    seed = r.provenance["random_seed"]
    with pytest.warns(Warning):
        again = ba.fit_frame(
            small_frame, **EXAMPLE_ROLES, draws=100, tune=150, progressbar=False, random_seed=seed
        )
    assert again.provenance["seed_drawn"] is False
    np.testing.assert_array_equal(r.draws("state_effect"), again.draws("state_effect"))


def test_short_views(drawn_seed_fit):
    r = drawn_seed_fit
    text = repr(r)
    assert len(text) < 1500
    assert "30 patients in 5 therapists" in text and "state_effect" in text
    assert f"seed {r.provenance['random_seed']} (drawn)" in text
    html = r._repr_html_()
    assert html.startswith("<div") and "state_effect" in html and len(html) < 6000
    assert ("passed" in html) == r.convergence.ok


def test_session_data_views(small_frame):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = ba.SessionData.from_frame(small_frame, **EXAMPLE_ROLES)
    text = repr(data)
    assert text.startswith("SessionData: 30 patients in 5 therapists") and len(text) < 800
    html = data._repr_html_()
    assert "<table" in html and "first 5 rows" in html
