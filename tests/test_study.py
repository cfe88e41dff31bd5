"""Studies: study files checked like specs, pure seeded tasks, a tiny study on a Dask
LocalCluster, stopped midway (in-process and by a signal) and resumed to the same results as an
uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from bayes_alliance.study.runner import (
    StudyFolderError,
    all_tasks,
    pending_tasks,
    run_study,
)
from bayes_alliance.study.spec import STUDIES, load_study, parse_study
from bayes_alliance.study.summary import read_results
from bayes_alliance.study.tasks import ROW_COLUMNS, Task, data_seed, run_task, simulate_task

TINY = """
[study]
name = "tiny"
seed = 7
replications = 3
parameters = ["state_effect", "outcome_autoregression"]
ci_prob = 0.9

[simulate]
n_therapists = 1
patients_per_therapist = 30

[conditions]
sessions = [5, 10]

[[methods]]
name = "two_step"
kind = "two_step"

[[methods]]
name = "observed_reml"
kind = "observed_reml"
"""


def _write(tmp_path: Path, text: str = TINY, reps: int | None = None) -> Path:
    if reps is not None:
        text = text.replace("replications = 3", f"replications = {reps}")
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["condition", "replication", "method", "parameter"]
    return df.drop(columns="seconds").sort_values(keys).reset_index(drop=True)


def test_study_file_checks_name_key_and_value(tmp_path: Path) -> None:
    raw = tomllib.loads(TINY)
    raw["study"]["replicatons"] = 2
    with pytest.raises(ValueError, match=r"replicatons.*Did you mean 'replications'"):
        parse_study(raw)
    raw = tomllib.loads(TINY)
    raw["methods"][0]["kind"] = "two-step"
    with pytest.raises(ValueError, match=r"kind 'two-step'.*Did you mean 'two_step'"):
        parse_study(raw)
    raw = tomllib.loads(TINY)
    raw["study"]["parameters"] = ["state_efect"]
    with pytest.raises(ValueError, match="state_efect"):
        parse_study(raw)
    raw = tomllib.loads(TINY)
    raw["conditions"]["sessions"] = [1, 5]
    with pytest.raises(ValueError, match=r"condition c01.*sessions must be at least 2"):
        parse_study(raw)
    raw = tomllib.loads(TINY)
    raw["simulate"]["sessions"] = 8
    with pytest.raises(ValueError, match="both fixed"):
        parse_study(raw)
    raw = tomllib.loads(TINY)
    raw["methods"][0]["sampler"] = {"draws": 10}
    with pytest.raises(ValueError, match="for kind 'joint' or 'mechanisms' only"):
        parse_study(raw)
    raw = tomllib.loads(TINY)
    raw["methods"][0]["name"] = "../../escaped"
    with pytest.raises(ValueError, match="names the method's result files"):
        parse_study(raw)
    with pytest.raises(
        ValueError, match="shipped studies: centring, measurement_error, mechanism_recovery, power"
    ):
        load_study(tmp_path / "nosuch.toml")


def test_shipped_studies_parse() -> None:
    centring = load_study("centring")
    assert [c.varied for c in centring.conditions()] == [
        {"sessions": 5},
        {"sessions": 10},
        {"sessions": 20},
    ]
    assert [m.kind for m in centring.methods] == ["joint", "observed_reml", "two_step"]
    assert load_study(STUDIES / "power.toml").parameters == ("state_effect",)


def test_measurement_error_study_parses_with_reliabilities_as_error_sds() -> None:
    from bayes_alliance.sim.settings import TrueParameters, split_settings

    study = load_study("measurement_error")
    assert [c.varied for c in study.conditions()] == [
        {"sessions": t, "reliability": r} for t in (6, 12, 20) for r in (0.6, 0.8, 1.0)
    ]
    for cond in study.conditions():
        pkw, _ = split_settings(study.settings(cond))
        rel = TrueParameters(**pkw).reliability
        assert rel == pytest.approx((cond.varied["reliability"],) * 2)
    # Only the arm that estimates the error SDs gives rows for them.
    with_error, without = (study.method(n) for n in ("with_error", "without_error"))
    sds = ("measurement_error_sd_predictor", "measurement_error_sd_outcome")
    assert all(with_error.estimates(p) for p in study.parameters)
    assert [p for p in study.parameters if not without.estimates(p)] == list(sds)


def test_seeds_follow_the_settings_not_the_grid_position(tmp_path: Path) -> None:
    small = load_study(_write(tmp_path))
    bigger = parse_study({**tomllib.loads(TINY), "conditions": {"sessions": [3, 5, 10]}})
    key5 = next(c.key for c in small.conditions() if c.varied == {"sessions": 5})
    key5b = next(c.key for c in bigger.conditions() if c.varied == {"sessions": 5})
    assert key5 == key5b
    assert data_seed(7, key5, 0) != data_seed(7, key5, 1)
    # Every method of a replication sees the same data set.
    a, _ = simulate_task(Task(small, "c01", 1, "two_step"))
    b, _ = simulate_task(Task(small, "c01", 1, "observed_reml"))
    pd.testing.assert_frame_equal(a.to_long(), b.to_long())


def test_task_rows_are_pure(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path))
    task = Task(study, "c02", 2, "observed_reml")
    first, again = run_task(task), run_task(task)
    assert list(first.columns) == list(ROW_COLUMNS)
    assert set(first["parameter"]) == {"state_effect", "outcome_autoregression"}
    assert (first["error"] == "").all() and first["converged"].all()
    pd.testing.assert_frame_equal(first.drop(columns="seconds"), again.drop(columns="seconds"))
    assert (first["ci_low"] < first["estimate"]).all() and (
        first["estimate"] < first["ci_high"]
    ).all()


def test_stopped_study_resumes_to_the_uninterrupted_results(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path))
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_study(study, whole, workers=2, progress=False) == len(all_tasks(study)) == 12
    assert run_study(study, parts, workers=2, progress=False, stop_after=5) == 5
    assert len(pending_tasks(study, parts)) == 7
    assert run_study(study, parts, workers=1, progress=False) == 7
    assert run_study(study, parts, workers=1, progress=False) == 0  # nothing repeated
    pd.testing.assert_frame_equal(_sorted(read_results(whole)), _sorted(read_results(parts)))
    assert (whole / "conditions.csv").is_file() and (whole / "study.toml").is_file()
    changed = parse_study(tomllib.loads(TINY.replace("seed = 7", "seed = 8")))
    with pytest.raises(StudyFolderError, match="different study"):
        run_study(changed, whole, workers=1, progress=False)
    # More replications extend the same folder (the fingerprint leaves the count out).
    assert run_study(study.with_replications(4), whole, workers=1, progress=False) == 4


def test_cli_study_interrupted_by_a_signal_resumes(tmp_path: Path) -> None:
    """A study killed with SIGINT mid-run keeps its finished tasks, exits 130, and the same
    command finishes it with results equal to an uninterrupted run's."""
    path = _write(tmp_path, reps=60)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bayes_alliance.cli.app", "study", str(path), "--out", str(out)]
    cmd += ["--workers", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = list((out / "results").glob("*/*.parquet")) if out.exists() else []
        if len(done) >= 20 or proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    kept = len(list((out / "results").glob("*/*.parquet")))
    assert 20 <= kept < 240
    rc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rc.returncode == 0, rc.stderr
    assert f"{kept} of 240 tasks already done" in rc.stderr
    assert (out / "summary.csv").is_file() and (out / "report" / "index.html").is_file()
    study = load_study(path)
    whole = tmp_path / "whole"
    run_study(study, whole, workers=2, progress=False)
    pd.testing.assert_frame_equal(_sorted(read_results(whole)), _sorted(read_results(out)))


def test_study_runs_on_an_existing_cluster_given_its_scheduler_address(tmp_path: Path) -> None:
    """``--scheduler ADDRESS``: the study uses a running cluster instead of starting one."""
    from dask.distributed import LocalCluster

    study = load_study(_write(tmp_path, reps=2))
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        done = run_study(
            study, tmp_path / "remote", scheduler=cluster.scheduler_address, progress=False
        )
    assert done == len(all_tasks(study)) == 8
    assert len(read_results(tmp_path / "remote")) == 16
