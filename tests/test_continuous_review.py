"""Review fixes of continuous time (issue 27): the report's predictive check on a dated fit,
commands that have no continuous-time form, the priors and equations the report prints."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg as sl
import xarray as xr
from scipy.stats import norm

from bayes_alliance.core import vocab as v
from bayes_alliance.report.checks import session_predictive
from bayes_alliance.spec.model_spec import ModelSpec
from tests.test_continuous_posthoc import DIFFUSION, DRIFT, VALUES, _data, _frame


def _constant_fit(data, spec, values, n_draws, seed=0):
    """A stand-in fit whose every draw holds ``values`` and the same random states."""
    rng = np.random.default_rng(seed)
    shape = (data.n_patients, data.x.shape[1])
    states = {n: rng.normal(0.0, 0.8, shape) for n in ("state_predictor", "state_outcome")}
    post = xr.Dataset(
        {
            **{k: (("chain", "draw"), np.full((1, n_draws), x)) for k, x in values.items()},
            **{
                k: (
                    ("chain", "draw", "patient", "session"),
                    np.broadcast_to(w, (1, n_draws, *shape)),
                )
                for k, w in states.items()
            },
        }
    )
    return SimpleNamespace(idata=SimpleNamespace(posterior=post), data=data, spec=spec), states


def test_predictive_check_on_dates_replicates_each_cells_own_interval():
    """The replicated outcome mean at each session: centred on the observed score minus the
    state plus ``expm(A dt) w_prev`` of each patient's own interval (scipy), spread by the
    stationary-minus-propagated covariance of that interval (dense Lyapunov solve). The
    session-number reduced form read zeros here (no dynamics, no spread)."""
    data = _data(_frame(seed=2, n_pat=8, n_ses=5, gaps=0.0))
    spec = ModelSpec(therapist_level=False, time_model="continuous")
    n_draws = 600
    fit, states = _constant_fit(data, spec, VALUES, n_draws)
    table = session_predictive(fit, ci_prob=0.9, n_rep=n_draws, seed=3)
    out = table[table.variable == "outcome"].reset_index(drop=True)
    stat = sl.solve_continuous_lyapunov(DRIFT, -DIFFUSION)
    wx, wy = states["state_predictor"], states["state_outcome"]
    for t in range(1, data.x.shape[1]):
        means, variances = [], []
        for p in range(data.n_patients):
            phi = sl.expm(DRIFT * (data.times[p, t] - data.times[p, t - 1]))
            q = stat - phi @ stat @ phi.T
            prev = np.array([wx[p, t - 1], wy[p, t - 1]])
            means.append(data.y[p, t] - wy[p, t] + phi[1] @ prev)
            variances.append(q[1, 1])
        sd = np.sqrt(np.sum(variances)) / data.n_patients
        row = out.iloc[t - 1]
        assert row.replicated == pytest.approx(np.mean(means), abs=0.25 * sd)
        width = 2 * norm.ppf(0.95) * sd
        assert row.rep_high - row.rep_low == pytest.approx(width, rel=0.25)


@pytest.mark.parametrize("call", ["innovation_scale", "null_model", "patterns", "feedback"])
def test_session_step_commands_refuse_a_continuous_fit_and_name_the_flag(call):
    """The pattern thresholds, their null model, the patterns table and patient feedback are
    written in session steps; on a dated fit they read zero autoregressions and innovation
    SDs (zero thresholds, flat null series). They refuse it and name the option."""
    from bayes_alliance.analysis import pattern_table as pt_
    from bayes_alliance.feedback.patient_feedback import patient_feedback

    data = _data(_frame(seed=2, n_pat=4, n_ses=4, gaps=0.0))
    spec = ModelSpec(therapist_level=False, time_model="continuous")
    fit, _ = _constant_fit(data, spec, VALUES, 4)
    fit.provenance = {}
    calls = {
        "innovation_scale": lambda: pt_.innovation_scale(fit, v.PREDICTOR),
        "null_model": lambda: pt_.NullModel(fit),
        "patterns": lambda: pt_.patterns_table(fit),
        "feedback": lambda: patient_feedback(fit, data.patients[0]),
    }
    with pytest.raises(ValueError, match="--time-model sessions"):
        calls[call]()


def test_report_says_why_a_dated_fit_has_no_pattern_counts():
    from bayes_alliance.report.patterns import patterns_section

    data = _data(_frame(seed=2, n_pat=4, n_ses=4, gaps=0.0))
    fit, _ = _constant_fit(
        data, ModelSpec(therapist_level=False, time_model="continuous"), VALUES, 4
    )
    section = patterns_section(fit)
    assert section is not None and "--time-model sessions" in section.paragraphs[0]


def test_priors_table_of_a_dated_fit_is_the_builders():
    """The report's priors on a dated fit: the drift and diffusion rows the model uses,
    scaled by the median interval (computed here from the dates) and the data's SDs."""
    from bayes_alliance.report.model_text import equations
    from bayes_alliance.report.priors_text import priors_table

    data = _data(_frame(seed=2, n_pat=8, n_ses=5, gaps=0.0))
    spec = ModelSpec(therapist_level=False, time_model="continuous", random_slopes=("patient",))
    table = priors_table(spec, data)
    steps = np.diff(data.times, axis=1)
    m = np.median(steps[np.isfinite(steps) & (steps > 0)])
    ratio = np.nanstd(data.y) / np.nanstd(data.x)
    ar = table.loc[v.DRIFT_OUTCOME_AUTOREGRESSION, "prior"]
    assert ar == f"Normal(mu={-0.7 / m:.3g}, sigma={0.7 / m:.3g})"
    assert (
        table.loc[v.SD_STATE_EFFECT_PATIENT, "prior"] == f"HalfNormal(sigma={0.25 * ratio / m:.3g})"
    )
    assert table.loc[v.DIFFUSION_SD_OUTCOME, "prior"] == (
        f"HalfNormal(sigma={np.nanstd(data.y) * np.sqrt(1.4 / m):.3g})"
    )
    assert "median interval" in table.loc[v.DRIFT_STATE_EFFECT, "source"]
    assert not {v.OUTCOME_AUTOREGRESSION, v.INNOVATION_SD_OUTCOME} & set(table.index)
    text = equations(spec)
    assert "expm(A_i Δt)" in text and "A_i S_i + S_i A_i' + G G' = 0" in text
    assert "t-1 is the previous session number" not in text and "Σ*" not in text


def test_a_time_column_with_the_session_model_is_refused():
    """--time COL --time-model sessions fitted session numbers 1, 2, 3 on a grid compacted
    from the times (sessions 1, 2, 5 lost their gap); now refused, naming the column."""
    from bayes_alliance.spec.options import make_model, make_roles

    roles = make_roles(
        {"patient": "p", "session": "s", "predictor": "x", "outcome": "y", "time": "day"}
    )
    with pytest.raises(ValueError, match=r"'day'.*--time-model sessions"):
        make_model({"time_model": "sessions"}, roles)
    assert make_model({}, roles).time_model == "continuous"


def test_date_and_time_problems_name_the_patient():
    """Each bad date or time names its patient in words ("patient b"), beside the rows."""
    import pandas as pd

    from bayes_alliance.core.problems import DataValidationError
    from bayes_alliance.data.reshape import sessions_from_dates

    df = pd.DataFrame(
        {
            "patient": ["a", "a", "b", "b", "c", "c"],
            "date": ["2024-01-02", "soon", "2024-01-03", "2024-01-03", None, "2024-01-05"],
        }
    )
    with pytest.raises(DataValidationError) as err:
        sessions_from_dates(df, patient="patient", date="date", elapsed="days")
    lines = str(err.value).splitlines()
    (bad,) = [x for x in lines if "not a date" in x]
    (tie,) = [x for x in lines if "same date" in x]
    (empty,) = [x for x in lines if "empty date" in x]
    assert "patient a" in bad and "patient b" in tie and "patient c" in empty
    frame = _frame(n_pat=3, n_ses=4, gaps=0.0)
    frame.loc[10, "time"] = frame.loc[9, "time"]
    frame.loc[1, "time"] = np.nan
    with pytest.raises(DataValidationError) as err:
        _data(frame)
    lines = str(err.value).splitlines()
    (same,) = [x for x in lines if "same time" in x]
    (gone,) = [x for x in lines if "empty time" in x]
    assert "patient p2" in same and "(ids" not in same and "patient p0" in gone


def test_unsupported_options_name_the_command_line_flag():
    with pytest.raises(ValueError, match="--time-model sessions"):
        ModelSpec(time_model="continuous", trend=True)


def test_r2_and_interval_rows_say_which_interval():
    """The R-squared note and the methods text name the interval of each R-squared; the
    interval rows say they are Phi at the average drift when cross effects vary."""
    import pandas as pd

    from bayes_alliance.report import continuous as ct_report
    from bayes_alliance.report.tables import label_r2

    spec = ModelSpec(time_model="continuous", effects_interval=7.0, random_slopes=("patient",))
    empty = pd.DataFrame(
        columns=[v.EQUATION, "denominator", v.COMPONENT, "mean", "ci_low", "ci_high"]
    )
    note = label_r2(empty, spec, predictor="x", outcome="y", ci_prob=0.9).attrs["note"]
    assert "at the effects interval, per 7 days" in note and "own interval" in note
    text = ct_report.methods_sentence(spec, "x", "y")
    assert "own interval" in text and "fixed (average) drift" in text
    (label,) = ct_report.time_labels(["bayesian_r2"], ["Bayesian R2"], spec, "x", "y")
    assert "own interval" in label
    plain = label_r2(empty, ModelSpec(), predictor="x", outcome="y", ci_prob=0.9)
    assert "interval" not in plain.attrs["note"].replace("intervals", "")


def test_thinning_words_use_english_ordinals():
    """The report's pattern section says 'every 3rd draw', not 'every 3th draw'."""
    from bayes_alliance.report.patterns import _ordinal

    got = [_ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111, 112)]
    assert got == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th",
        "21st", "22nd", "23rd", "101st", "111th", "112th",
    ]  # fmt: skip
