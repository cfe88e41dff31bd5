"""Spec files switch to continuous time as the command line does: ``[data] dates = true``
(the session column holds dates) or ``[data] time = COLUMN``, unless ``[model] time_model =
"sessions"`` (bayes_alliance.spec.specfile, cli.commands.fit_inputs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.cli.commands import fit_inputs
from bayes_alliance.cli.parser import build_parser
from bayes_alliance.spec.specfile import DATE_TIME, parse_spec

DATA = {"patient": "id", "session": "date", "predictor": "x", "outcome": "y"}


def test_dates_in_the_spec_file_mean_continuous_time():
    spec = parse_spec({"data": {**DATA, "dates": True}})
    assert spec.dates and spec.model.time_model == "continuous"
    assert spec.roles.time == DATE_TIME
    weeks = parse_spec({"data": {**DATA, "dates": True}, "model": {"time_unit": "weeks"}})
    assert weeks.model.time_unit == "weeks"
    # the opt-out keeps session numbers (the dates only order the sessions)
    kept = parse_spec({"data": {**DATA, "dates": True}, "model": {"time_model": "sessions"}})
    assert kept.dates and kept.model.time_model == "sessions" and kept.roles.time is None
    timed = parse_spec({"data": {**DATA, "session": "session", "time": "day"}})
    assert timed.model.time_model == "continuous" and not timed.dates
    plain = parse_spec({"data": {**DATA, "session": "session"}})
    assert plain.model.time_model == "sessions"


def test_bad_date_keys_are_named():
    with pytest.raises(ValueError, match="dates must be true or false"):
        parse_spec({"data": {**DATA, "dates": "yes"}})
    with pytest.raises(ValueError, match="both dates = true and a time column"):
        parse_spec({"data": {**DATA, "dates": True, "time": "day"}})
    with pytest.raises(ValueError, match="date_format must be a string"):
        parse_spec({"data": {**DATA, "dates": True, "date_format": 3}})


def test_fit_reads_a_dated_spec_as_times(tmp_path):
    """The data a fit with such a spec file gets: each session's days since the patient's
    first date (dates given day-first, read with the spec's date_format)."""
    days = {"a": [0, 3, 17, 24], "b": [0, 7, 8]}
    rows = [
        dict(
            id=p,
            date=(pd.Timestamp("2025-03-03") + pd.Timedelta(days=d)).strftime("%d.%m.%Y"),
            x=1.0 + k,
            y=2.0 - k,
        )
        for p, ds in days.items()
        for k, d in enumerate(ds)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "s.toml").write_text(
        '[data]\npatient = "id"\nsession = "date"\npredictor = "x"\noutcome = "y"\n'
        'dates = true\ndate_format = "%d.%m.%Y"\n'
    )
    args = build_parser().parse_args(
        [
            "fit",
            str(tmp_path / "d.csv"),
            "--spec",
            str(tmp_path / "s.toml"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    data, spec, _, _ = fit_inputs(args)
    assert spec.time_model == "continuous"
    np.testing.assert_array_equal(data.times[0], days["a"])
    np.testing.assert_array_equal(data.times[1, :3], days["b"])


def test_report_words_and_figure_of_continuous_time():
    """The Phi(dt) figure (four panels, the band around the median), the labels with the
    interval, and the methods sentence with its equations and citations."""
    from bayes_alliance.core import vocab as v
    from bayes_alliance.report import continuous as ct_report
    from bayes_alliance.report.methods import references
    from bayes_alliance.spec.model_spec import ModelSpec

    spec = ModelSpec(time_model="continuous", effects_interval=7.0)
    rng = np.random.default_rng(0)
    base = {"drift_predictor_autoregression": -0.15, "drift_reverse_state_effect": 0.03}
    base |= {"drift_state_effect": -0.05, "drift_outcome_autoregression": -0.1}
    post = {k: x + 0.005 * rng.standard_normal((2, 50)) for k, x in base.items()}
    fig = ct_report.phi_figure(post, spec, "alliance", "symptoms")
    assert len(fig.axes) == 4
    lines = fig.axes[2].get_lines()  # x -> y: the median curve starts at 0 and dips below
    assert lines[0].get_ydata()[0] == pytest.approx(0.0) and min(lines[0].get_ydata()) < 0
    labels = ct_report.time_labels(
        [v.STATE_EFFECT, v.DRIFT_STATE_EFFECT, v.INTERCEPT_OUTCOME], ["a", "b", "c"], spec, "x", "y"
    )
    assert labels == ["a, per 7 days", "b, per day", "c"]
    (sd,) = ct_report.time_labels([v.SD_STATE_EFFECT_PATIENT], ["s"], spec, "x", "y")
    assert sd == "SD of the drift's cross effect x → y between patients, per day"
    text = ct_report.methods_sentence(spec, "alliance", "symptoms")
    assert "expm(A dt)" in text and "Oud & Jansen 2000" in text and "7 days" in text
    assert any("ctsem" in r for r in references(spec))
    assert ct_report.methods_sentence(ModelSpec(), "x", "y") == ""
