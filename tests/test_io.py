"""Atomic output folders: interruption, killed runs, the lock against a second writer, and the
check that tells a results file from a truncated or foreign one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bayes_alliance.core.files import (
    PROVENANCE_ATTR,
    OutputExistsError,
    OutputLockedError,
    ResultsFileError,
    atomic_dir,
    check_results_file,
    incomplete_prefix,
    lock_path,
)


def _beside(target: Path) -> set[str]:
    """Everything beside ``target`` that belongs to it: itself, its temporary folders, its lock."""
    return {p.name for p in target.parent.iterdir() if target.name in p.name}


def test_complete_folder_appears_and_nothing_else_remains(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        assert tmp.name.startswith(incomplete_prefix(target))
        assert lock_path(target).is_file() and not target.exists()
        (tmp / "a.txt").write_text("a")
    assert (target / "a.txt").read_text() == "a"
    assert _beside(target) == {"out"}


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_error_or_interrupt_leaves_nothing(tmp_path, exc):
    target = tmp_path / "out"
    with pytest.raises(exc), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise exc
    assert _beside(target) == set()


def test_force_replaces_only_when_complete(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError), atomic_dir(target):
        pass
    with pytest.raises(KeyboardInterrupt), atomic_dir(target, force=True):
        raise KeyboardInterrupt
    assert (target / "old.txt").read_text() == "old"
    with atomic_dir(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert _beside(target) == {"out"}


def test_second_writer_in_the_same_process_is_refused(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target), pytest.raises(OutputLockedError, match=str(os.getpid())):
        with atomic_dir(target):
            pass
    with atomic_dir(target, force=True):  # released: a later run proceeds
        pass


def _holder(target: Path, then: str) -> subprocess.Popen[str]:
    """A process inside atomic_dir(target) that writes a file, says so, then `then`s."""
    code = textwrap.dedent(
        f"""
        import os, signal, sys, time
        from bayes_alliance.core.files import atomic_dir
        with atomic_dir({str(target)!r}) as tmp:
            (tmp / "part.txt").write_text("part")
            print(tmp, flush=True)
            {then}
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # blocks until the holder is inside
    assert line, "the holder process did not start"
    return proc


def test_second_writer_in_another_process_is_refused_until_the_first_ends(tmp_path):
    target = tmp_path / "out"
    proc = _holder(target, "time.sleep(60)")
    try:
        with pytest.raises(OutputLockedError, match=rf"process {proc.pid}\b"):
            with atomic_dir(target):
                pass
        assert not target.exists()
    finally:
        proc.kill()
        proc.wait()
    with atomic_dir(target) as tmp:  # the lock died with its process
        (tmp / "mine.txt").write_text("mine")
    assert [p.name for p in target.iterdir()] == ["mine.txt"]


def test_killed_run_leaves_only_a_recognisable_folder_that_the_next_run_removes(tmp_path):
    target = tmp_path / "out"
    proc = _holder(target, "os.kill(os.getpid(), signal.SIGKILL)")
    assert proc.wait() == -signal.SIGKILL
    left = _beside(target)
    assert not target.exists()
    incomplete = {n for n in left if n.startswith(incomplete_prefix(target))}
    assert len(incomplete) == 1
    assert left - incomplete <= {lock_path(target).name}  # a lock no process holds
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _beside(target) == {"out"}
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_a_dead_replace_leftover_is_removed_once_the_target_is_complete(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    stale = tmp_path / ".out.old-99999"
    stale.mkdir()
    with atomic_dir(target, force=True):
        pass
    assert not stale.exists()


# ----------------------------------------------------------------------------- results files
def _results_file(path: Path, *, provenance: object = None, groups=("posterior", "session_data")):
    children = {g: xr.DataTree(xr.Dataset({"v": ("x", np.arange(2000.0))})) for g in groups}
    tree = xr.DataTree(children=children)
    if provenance is not None:
        tree.attrs[PROVENANCE_ATTR] = (
            provenance if isinstance(provenance, str) else json.dumps(provenance)
        )
    tree.to_netcdf(path, engine="h5netcdf")
    return path


GOOD = {"spec": {}, "roles": {}, "random_seed": 1}


def test_a_results_file_passes(tmp_path):
    path = _results_file(tmp_path / "fit.nc", provenance=GOOD)
    assert check_results_file(path) == path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "no results file at"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_text("parameter,mean\nstate_effect,0.1\n"), "not netCDF-4/HDF5"),
        (
            lambda p: p.write_bytes(_results_file(p, provenance=GOOD).read_bytes()[:3000]),
            r"is truncated \(3000 bytes\)",
        ),
        (lambda p: _results_file(p), "not a result written by bayes_alliance"),
        (
            lambda p: _results_file(p, provenance=GOOD, groups=("posterior",)),
            r"lacks the group\(s\) \['session_data'\]",
        ),
        (lambda p: _results_file(p, provenance="{not json"), "damaged"),
        (lambda p: _results_file(p, provenance={"spec": {}}), "damaged"),
    ],
    ids=["missing", "empty", "csv", "truncated", "foreign", "no-data", "bad-json", "no-keys"],
)
def test_bad_results_files_get_one_clear_sentence(tmp_path, make, message):
    path = tmp_path / "fit.nc"
    make(path)
    with pytest.raises(ResultsFileError, match=message) as info:
        check_results_file(path)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_lock_file_names_the_holder(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target):
        assert lock_path(target).read_text().strip() == str(os.getpid())
    assert not lock_path(target).exists()
