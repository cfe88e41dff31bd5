"""The simulation study's summary, figures and report on hand-made result rows: every measure
is worked out by hand here (never with the functions under test), on complete and partial
studies, failed and non-converged fits, and the report folder with its images."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bayes_alliance.study.plots import REFERENCE, bias_plot, coverage_plot, power_plot
from bayes_alliance.study.report import power_statements, study_name, write_study_report
from bayes_alliance.study.summary import (
    MEASURES,
    default_x,
    power_x,
    read_results,
    summarise_results,
    write_summary,
)

NAN = float("nan")
COLUMNS = [
    "condition",
    "replication",
    "method",
    "parameter",
    "truth",
    "estimate",
    "sd",
    "ci_low",
    "ci_high",
    "ci_prob",
    "converged",
    "seconds",
    "error",
]


def row(cond, rep, method, param, truth, est, sd, low, high, conv=True, sec=1.0, error=""):
    return (cond, rep, method, param, truth, est, sd, low, high, 0.94, conv, sec, error)


def failed(cond, rep, method, param, truth, sec=8.0):
    return row(cond, rep, method, param, truth, NAN, NAN, NAN, NAN, False, sec, "ValueError: x")


def frame(rows):
    return pd.DataFrame(rows, columns=COLUMNS)


# One cell worked out in full: c01, bayes, state_effect (truth 0.2), four tasks.
#   rep 1: estimate 0.1, sd 0.1, [-0.10, 0.30], converged, 2 s    (contains 0.2 and 0)
#   rep 2: estimate 0.3, sd 0.1, [ 0.10, 0.50], not converged, 4 s (contains 0.2, excludes 0)
#   rep 3: estimate 0.4, sd 0.2, [ 0.25, 0.55], converged, 6 s    (misses 0.2, excludes 0)
#   rep 4: failed (error), 8 s
# The same tasks for trait_effect_patient (truth 0): estimates -0.1, 0.0, 0.3 with intervals
# [-0.3, 0.1], [-0.2, 0.2], [0.1, 0.5] (the last excludes 0: a false positive).
CELL = [
    row("c01", 1, "bayes", "state_effect", 0.2, 0.1, 0.1, -0.1, 0.3, True, 2.0),
    row("c01", 2, "bayes", "state_effect", 0.2, 0.3, 0.1, 0.1, 0.5, False, 4.0),
    row("c01", 3, "bayes", "state_effect", 0.2, 0.4, 0.2, 0.25, 0.55, True, 6.0),
    failed("c01", 4, "bayes", "state_effect", 0.2, 8.0),
    row("c01", 1, "bayes", "trait_effect_patient", 0.0, -0.1, 0.1, -0.3, 0.1, True, 2.0),
    row("c01", 2, "bayes", "trait_effect_patient", 0.0, 0.0, 0.1, -0.2, 0.2, False, 4.0),
    row("c01", 3, "bayes", "trait_effect_patient", 0.0, 0.3, 0.1, 0.1, 0.5, True, 6.0),
    failed("c01", 4, "bayes", "trait_effect_patient", 0.0, 8.0),
]


def cell(summary, cond="c01", method="bayes", param="state_effect"):
    sel = (
        (summary["condition"] == cond)
        & (summary["method"] == method)
        & (summary["parameter"] == param)
    )
    assert sel.sum() == 1
    return summary[sel].iloc[0]


def test_every_measure_of_one_cell_by_hand():
    s = cell(summarise_results(frame(CELL)))
    errors = [0.1 - 0.2, 0.3 - 0.2, 0.4 - 0.2]
    bias = sum(errors) / 3
    sd_err = math.sqrt(sum((e - bias) ** 2 for e in errors) / 2)
    mse = sum(e**2 for e in errors) / 3
    mcse_mse = math.sqrt(sum((e**2 - mse) ** 2 for e in errors) / (3 * 2))
    mean_est = (0.1 + 0.3 + 0.4) / 3
    emp_sd = math.sqrt(sum((v - mean_est) ** 2 for v in (0.1, 0.3, 0.4)) / 2)
    expected = {
        "n": 3,
        "n_failed": 1,
        "truth": 0.2,
        "mean_estimate": mean_est,
        "bias": bias,
        "bias_mcse": sd_err / math.sqrt(3),
        "relative_bias": bias / 0.2,
        "rmse": math.sqrt(mse),
        "rmse_mcse": mcse_mse / (2 * math.sqrt(mse)),
        "empirical_sd": emp_sd,
        "empirical_sd_mcse": emp_sd / math.sqrt(2 * 2),
        "mean_sd": (0.1 + 0.1 + 0.2) / 3,
        "sd_ratio": ((0.1 + 0.1 + 0.2) / 3) / emp_sd,
        "ci_prob": 0.94,
        "coverage": 2 / 3,
        "coverage_mcse": math.sqrt((2 / 3) * (1 / 3) / 3),
        "interval_width": (0.4 + 0.4 + 0.3) / 3,
        "power": 2 / 3,
        "power_mcse": math.sqrt((2 / 3) * (1 / 3) / 3),
        "convergence_rate": 2 / 4,  # reps 1 and 3 of four tasks; the failed one counts
        "seconds_per_fit": (2 + 4 + 6 + 8) / 4,  # failed tasks cost time too
    }
    assert set(expected) == set(MEASURES)
    for name, value in expected.items():
        assert s[name] == pytest.approx(value, abs=1e-12), name
    # Numbers as printed by hand for the record.
    assert s["bias"] == pytest.approx(0.0666667, abs=1e-6)
    assert s["rmse"] == pytest.approx(0.1414214, abs=1e-6)


def test_truth_zero_has_no_relative_bias_and_power_is_the_false_positive_rate():
    s = cell(summarise_results(frame(CELL)), param="trait_effect_patient")
    assert s["truth"] == 0.0 and np.isnan(s["relative_bias"])
    assert s["bias"] == pytest.approx((-0.1 + 0.0 + 0.3) / 3)
    assert s["power"] == pytest.approx(1 / 3)  # only [0.1, 0.5] excludes 0
    assert s["coverage"] == pytest.approx(2 / 3)  # [0.1, 0.5] misses the truth 0


def test_columns_in_order_keys_settings_measures():
    conditions = pd.DataFrame({"condition": ["c01"], "sessions": [5], "p_missing_value": [0.1]})
    s = summarise_results(frame(CELL), conditions)
    assert list(s.columns) == [
        "condition",
        "method",
        "parameter",
        "sessions",
        "p_missing_value",
        *MEASURES,
    ]
    assert list(s["parameter"]) == ["state_effect", "trait_effect_patient"]
    assert (s["sessions"] == 5).all() and (s["p_missing_value"] == 0.1).all()
    with pytest.raises(ValueError, match="named like a summary column"):
        summarise_results(frame(CELL), pd.DataFrame({"condition": ["c01"], "bias": [1]}))
    with pytest.raises(ValueError, match="lack the column"):
        summarise_results(frame(CELL).drop(columns="estimate"))


def test_converged_only_uses_the_converged_fits():
    s = cell(summarise_results(frame(CELL), converged_only=True))
    # reps 1 and 3: errors -0.1 and 0.2
    assert s["n"] == 2 and s["n_failed"] == 1
    assert s["bias"] == pytest.approx((-0.1 + 0.2) / 2)
    assert s["coverage"] == pytest.approx(1 / 2)
    assert s["power"] == pytest.approx(1 / 2)
    assert s["interval_width"] == pytest.approx((0.4 + 0.3) / 2)
    assert s["convergence_rate"] == pytest.approx(2 / 4)  # the same either way


def test_a_cell_where_every_fit_failed_and_a_single_fit():
    rows = [failed("c02", r, "ml", "state_effect", 0.2, sec=1.0 + r) for r in (1, 2)]
    rows += [row("c03", 1, "ml", "state_effect", 0.2, 0.25, 0.1, 0.05, 0.45, True, 3.0)]
    s = summarise_results(frame(rows))
    dead = cell(s, "c02", "ml")
    assert dead["n"] == 0 and dead["n_failed"] == 2 and dead["convergence_rate"] == 0.0
    assert dead["truth"] == 0.2 and dead["seconds_per_fit"] == pytest.approx(2.5)
    for name in ("bias", "rmse", "coverage", "power", "empirical_sd", "mean_sd", "bias_mcse"):
        assert np.isnan(dead[name]), name
    one = cell(s, "c03", "ml")
    assert one["n"] == 1 and one["bias"] == pytest.approx(0.05)
    assert one["rmse"] == pytest.approx(0.05) and one["coverage"] == 1.0 and one["power"] == 1.0
    for name in ("bias_mcse", "empirical_sd", "empirical_sd_mcse", "sd_ratio", "rmse_mcse"):
        assert np.isnan(one[name]), name  # an SD needs two fits


def test_error_text_marks_a_failure_and_a_task_failed_without_parameter_names():
    rows = [
        row("c01", 1, "ml", "state_effect", 0.2, 0.2, 0.1, 0.0, 0.4),
        row("c01", 1, "ml", "outcome_autoregression", 0.3, 0.3, 0.1, 0.1, 0.5),
        # An error text with an estimate left in: still a failure.
        row("c01", 2, "ml", "state_effect", 0.2, 9.0, 0.1, 8.0, 10.0, True, 1.0, "Timeout"),
        row("c01", 2, "ml", "outcome_autoregression", 0.3, 9.0, 0.1, 8.0, 10.0, True, 1.0, "T"),
        # The runner wrote one row for a task that died before naming its parameters.
        failed("c01", 3, "ml", "", NAN),
    ]
    # Another method whose only task so far failed that way: every parameter of the study.
    rows.append(failed("c01", 1, "bayes", None, NAN))
    s = summarise_results(frame(rows))
    assert len(s) == 4
    for param in ("state_effect", "outcome_autoregression"):
        c = cell(s, "c01", "ml", param)
        assert c["n"] == 1 and c["n_failed"] == 2, param
        assert c["bias"] == pytest.approx(0.0) and c["convergence_rate"] == pytest.approx(1 / 3)
        c = cell(s, "c01", "bayes", param)
        assert c["n"] == 0 and c["n_failed"] == 1 and c["convergence_rate"] == 0.0


def test_error_column_missing_or_none_means_success():
    rows = frame(CELL[:3]).drop(columns="error")
    assert cell(summarise_results(rows))["n"] == 3
    rows = frame(CELL[:3]).astype({"error": object})
    rows.loc[:, "error"] = None
    assert cell(summarise_results(rows))["n_failed"] == 0


# --- files: partial studies -------------------------------------------------------------


def write_task(out, rows):
    """One task's rows as the runner writes them: results/<condition>/<rep>-<method>.parquet."""
    df = frame(rows)
    cond, rep, method = df.loc[0, ["condition", "replication", "method"]]
    folder = out / "results" / cond
    folder.mkdir(parents=True, exist_ok=True)
    df.to_parquet(folder / f"{rep}-{method}.parquet", index=False)


def test_write_summary_on_a_partial_study_then_more_replications(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    pd.DataFrame({"condition": ["c01", "c02"], "sessions": [5, 10]}).to_csv(
        out / "conditions.csv", index=False
    )
    write_task(out, CELL[0:1] + CELL[4:5])
    write_task(out, CELL[1:2] + CELL[5:6])
    # A file being written by the runner (hidden temporary) and a damaged one are skipped.
    (out / "results" / "c01" / ".3-bayes.parquet.tmp-x").write_bytes(b"partial")
    (out / "results" / "c01" / "9-bayes.parquet").write_bytes(b"not parquet")
    s = write_summary(out)
    assert (out / "summary.csv").is_file()
    assert list(s["sessions"]) == [5, 5]
    c = cell(s)
    assert c["n"] == 2 and c["bias"] == pytest.approx((-0.1 + 0.1) / 2)
    assert c["convergence_rate"] == pytest.approx(1 / 2)
    back = pd.read_csv(out / "summary.csv", dtype={"condition": str})
    assert list(back.columns) == list(s.columns) and len(back) == 2
    # Two more tasks arrive: the summary grows, summary.csv is replaced.
    write_task(out, CELL[2:3] + CELL[6:7])
    write_task(out, CELL[3:4] + CELL[7:8])
    c = cell(write_summary(out))
    assert c["n"] == 3 and c["n_failed"] == 1 and c["coverage"] == pytest.approx(2 / 3)
    assert len(read_results(out)) == 8


def test_write_summary_before_any_result_and_without_a_folder(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    s = write_summary(out)
    assert s.empty and list(s.columns) == ["condition", "method", "parameter", *MEASURES]
    assert (out / "summary.csv").read_text().startswith("condition,method,parameter,n,")
    with pytest.raises(FileNotFoundError, match="no study folder"):
        write_summary(tmp_path / "missing")


# --- figures ------------------------------------------------------------------------------


def hand_summary(cells):
    """A summary table typed by hand: dicts with keys, settings and some measures; the other
    measures are NaN."""
    df = pd.DataFrame(cells)
    settings = [c for c in df.columns if c not in {"condition", "method", "parameter", *MEASURES}]
    for m in MEASURES:
        if m not in df:
            df[m] = NAN
    return df[["condition", "method", "parameter", *settings, *MEASURES]]


GRID = hand_summary(
    [
        # sessions varied (5, 10); patients fixed at 8: bias against sessions.
        {"condition": c, "method": m, "parameter": p, "sessions": ses, "n_patients": 8,
         "n": 100, "truth": t, "bias": b, "bias_mcse": 0.01, "coverage": cov,
         "ci_prob": 0.94, "power": pw, "power_mcse": 0.02}
        for c, ses, m, p, t, b, cov, pw in [
            ("c01", 5, "bayes", "state_effect", 0.2, 0.05, 0.90, 0.5),
            ("c02", 10, "bayes", "state_effect", 0.2, 0.02, 0.93, 0.9),
            ("c01", 5, "ml", "state_effect", 0.2, -0.04, 0.85, 0.6),
            ("c02", 10, "ml", "state_effect", 0.2, -0.01, 0.91, 0.95),
            ("c01", 5, "bayes", "outcome_autoregression", 0.3, 0.0, 0.95, 1.0),
            ("c02", 10, "bayes", "outcome_autoregression", 0.3, 0.01, 0.94, 1.0),
            ("c01", 5, "ml", "outcome_autoregression", 0.3, -0.02, 0.92, 1.0),
            ("c02", 10, "ml", "outcome_autoregression", 0.3, -0.01, 0.93, 1.0),
        ]
    ]
)  # fmt: skip


def data_lines(ax):
    return [line for line in ax.get_lines() if line.get_gid() != REFERENCE]


def test_bias_plot_one_panel_per_parameter_one_line_per_method_with_2_mcse_bars():
    assert default_x(GRID) == "sessions"
    fig = bias_plot(GRID)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [
        "state_effect (truth 0.2)",
        "outcome_autoregression (truth 0.3)",
    ]
    ax = panels[0]
    lines = {line.get_gid(): line for line in data_lines(ax)}
    assert set(lines) == {"method=bayes", "method=ml"}
    assert list(lines["method=bayes"].get_ydata()) == pytest.approx([0.05, 0.02])
    assert list(lines["method=ml"].get_ydata()) == pytest.approx([-0.04, -0.01])
    # Set apart around 5 and 10 (the two methods at one x do not overlap).
    bx, mx = lines["method=bayes"].get_xdata(), lines["method=ml"].get_xdata()
    assert np.all(bx < mx) and np.allclose((bx + mx) / 2, [5, 10])
    # Error bars: +-2 MCSE = +-0.02.
    bars = [c for c in ax.collections if len(c.get_segments()) == 2]
    spans = sorted(
        round(float(seg[1][1] - seg[0][1]), 10) for c in bars for seg in c.get_segments()
    )
    assert spans == pytest.approx([0.04] * 4)
    refs = [line for line in ax.get_lines() if line.get_gid() == REFERENCE]
    assert len(refs) == 1 and list(refs[0].get_ydata()) == [0, 0]
    assert [a.get_xlabel() for a in panels] == ["sessions", "sessions"]  # one row: both bottom
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["bayes", "ml"]


def test_coverage_plot_has_the_nominal_line_and_a_2_mcse_band():
    fig = coverage_plot(GRID)
    ax = fig.axes[0]
    assert list(data_lines(ax)[0].get_ydata()) == pytest.approx([0.90, 0.93])
    refs = [line for line in ax.get_lines() if line.get_gid() == REFERENCE]
    assert [line.get_ydata()[0] for line in refs] == [0.94]
    band = [p for p in ax.patches if p.get_gid() == REFERENCE]
    assert len(band) == 1
    low, height = band[0].get_y(), band[0].get_height()  # type: ignore[attr-defined]
    half = 2 * math.sqrt(0.94 * 0.06 / 100)
    assert low == pytest.approx(0.94 - half) and low + height == pytest.approx(0.94 + half)


def test_power_plot_against_a_sample_size_with_the_target_line():
    grid = hand_summary(
        [
            {"condition": f"c{k}", "method": "bayes", "parameter": "state_effect",
             "n_patients": npat, "sessions": 10, "n": 200, "truth": 0.2, "power": pw,
             "power_mcse": math.sqrt(pw * (1 - pw) / 200)}
            for k, (npat, pw) in enumerate([(40, 0.9), (10, 0.3), (20, 0.7)])
        ]
    )  # fmt: skip
    assert power_x(grid) == "n_patients" and default_x(grid) == "n_patients"
    fig = power_plot(grid)
    ax = fig.axes[0]
    (line,) = data_lines(ax)
    assert list(line.get_xdata()) == [10, 20, 40]  # sorted by x
    assert list(line.get_ydata()) == pytest.approx([0.3, 0.7, 0.9])
    refs = [line for line in ax.get_lines() if line.get_gid() == REFERENCE]
    assert [r.get_ydata()[0] for r in refs] == [0.8]
    assert ax.get_xlabel() == "n patients"


def test_other_varied_settings_give_one_line_each_and_no_setting_uses_condition_names():
    grid = hand_summary(
        [
            {"condition": f"c{ses}{npat}", "method": "ml", "parameter": "state_effect",
             "sessions": ses, "n_patients": npat, "n": 10, "truth": 0.2, "bias": 0.0,
             "bias_mcse": 0.01}
            for ses in (5, 10) for npat in (10, 20)
        ]
    )  # fmt: skip
    ax = bias_plot(grid).axes[0]
    assert sorted(line.get_label() for line in data_lines(ax)) == [
        "ml, n_patients=10",
        "ml, n_patients=20",
    ]
    single = hand_summary([{**GRID.iloc[0].to_dict(), "sessions": 5}]).drop(columns="n_patients")
    assert default_x(single) is None
    ax = bias_plot(single).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c01"]
    with pytest.raises(ValueError, match="no parameter"):
        bias_plot(GRID, parameters=["nope"])


# --- power sentences and the report ---------------------------------------------------------


def test_power_statements_name_the_first_x_reaching_0_8_with_its_mcse():
    cells = []
    for npat, pb, pm in [(10, 0.5, 0.3), (20, 0.82, 0.5), (40, 0.97, 0.7)]:
        for method, pw in (("bayes", pb), ("ml", pm)):
            cells.append(
                {"condition": f"c{npat}", "method": method, "parameter": "state_effect",
                 "n_patients": npat, "n": 100, "truth": 0.2, "power": pw,
                 "power_mcse": math.sqrt(pw * (1 - pw) / 100)}
            )  # fmt: skip
            cells.append({**cells[-1], "parameter": "trait_effect_patient", "truth": 0.0})
    lines = power_statements(hand_summary(cells))
    assert len(lines) == 2  # truth 0: no power sentence
    bayes, ml = lines
    se = math.sqrt(0.82 * 0.18 / 100)
    assert bayes.startswith("bayes, state_effect: power reaches 0.8 first at n_patients = 20")
    assert f"MCSE {se:.2f}" in bayes and f"{0.82 - 2 * se:.2f} to {0.82 + 2 * se:.2f}" in bayes
    assert "more replications are needed" in bayes  # 0.82 - 2 MCSE < 0.8
    assert ml.startswith("ml, state_effect: power 0.8 not reached up to n_patients = 40")
    assert "highest power 0.70" in ml
    assert power_statements(GRID.assign(sessions=5)) == []  # no varied numeric setting


def test_report_folder_with_images_tables_and_power(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.toml").write_text('[study]\nname = "Alliance pilot"\nseed = 1\n')
    pd.DataFrame({"condition": ["c01", "c02"], "n_patients": [10, 20]}).to_csv(
        out / "conditions.csv", index=False
    )
    for r in CELL[:4]:  # c01: the hand-worked state_effect cell, one task per file
        write_task(out, [r])
    # c02: more patients, every interval excludes 0.
    for rep in (1, 2, 3):
        write_task(out, [row("c02", rep, "bayes", "state_effect", 0.2, 0.2, 0.05, 0.1, 0.3)])
    path = write_study_report(out)
    assert path == out / "report" / "index.html"
    page = path.read_text()
    assert "<h1>Simulation study: Alliance pilot</h1>" in page
    assert "7 tasks done (1 failed) in 2 of 2 conditions" in page
    for stem in ("bias", "coverage", "power"):
        png = out / "report" / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"src='{stem}.png'" in page
    assert len(re.findall(r"<figcaption>Figure \d\. ", page)) == 3
    assert "<caption>Table 1. state_effect</caption>" in page
    assert "0.067 (0.088)" in page  # bias (MCSE) of the hand-worked cell
    assert "power reaches 0.8 first at n_patients = 20, the smallest" not in page
    assert "bayes, state_effect: power reaches 0.8 first at n_patients = 20" in page
    assert (out / "summary.csv").is_file() and (out / "report" / "summary.csv").is_file()
    # Written again (the study goes on): replaced, no leftovers beside it.
    write_study_report(out)
    assert sorted(p.name for p in out.iterdir()) == [
        "conditions.csv",
        "report",
        "results",
        "study.toml",
        "summary.csv",
    ]


def test_report_of_an_empty_study_and_the_name_without_study_toml(tmp_path):
    out = tmp_path / "my_study"
    out.mkdir()
    assert study_name(out) == "my_study"
    (out / "study.toml").write_text("not = [toml")
    assert study_name(out) == "my_study"
    page = write_study_report(out).read_text()
    assert "No tasks are done yet." in page and "No results to summarise yet." in page
