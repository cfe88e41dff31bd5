"""Running a study on Dask, resumably.

The output folder holds::

    study.toml                 the study file, as run
    manifest.json              its fingerprint (a folder resumes only the same study), versions
    conditions.csv             one row per condition: its id and varied settings
    results/<condition>/<replication>-<method>.parquet
                               one file per finished task (its rows), written atomically

Every finished task is on disk before the next one is handed out, and a task's file is its
only trace, so a study stopped at any point (Ctrl-C, a crash, a lost machine) resumes with
exactly the tasks whose files are missing; tasks are pure and seeded by their key, so the
resumed study's results equal an uninterrupted run's. The client keeps at most a few tasks per
worker in flight and holds no results, so memory stays flat however long the study.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_alliance.core.files import atomic_dir, atomic_path
from bayes_alliance.study.spec import Study
from bayes_alliance.study.tasks import Task, failed_rows, run_task

IN_FLIGHT_PER_WORKER = 2


class StudyFolderError(ValueError):
    """The output folder holds another study's results."""


def task_path(out: Path, condition: str, replication: int, method: str) -> Path:
    return out / "results" / condition / f"{replication:05d}-{method}.parquet"


def all_tasks(study: Study) -> list[Task]:
    """Every task of the study, replication-major: the first replications of every condition
    and method finish first, so a partial study already covers the whole grid."""
    return [
        Task(study, cond.id, rep, method.name)
        for rep in range(study.replications)
        for cond in study.conditions()
        for method in study.methods
    ]


def pending_tasks(study: Study, out: Path) -> list[Task]:
    """The tasks whose result file is missing."""
    return [t for t in all_tasks(study) if not task_path(out, *t.key).is_file()]


def write_task(out: Path, task: Task, rows: pd.DataFrame) -> None:
    path = task_path(out, *task.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, force=True) as tmp:
        rows.to_parquet(tmp, index=False)


def prepare_folder(study: Study, out: Path) -> None:
    """Create the folder, or check that it holds this study (same fingerprint)."""
    from bayes_alliance.inference.sampling import versions

    manifest = out / "manifest.json"
    if manifest.is_file():
        old = json.loads(manifest.read_text())
        if old.get("fingerprint") != study.fingerprint():
            raise StudyFolderError(
                f"{out} holds results of a different study ({old.get('name')!r}, other settings, "
                "methods or seed); give another --out, or delete the folder to start again"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise StudyFolderError(f"{out} exists and is not a study folder; give another --out")
    if out.exists():
        out.rmdir()  # empty: atomic_dir builds the folder beside it and renames it into place
    info = {
        "name": study.name,
        "fingerprint": study.fingerprint(),
        "seed": study.seed,
        "versions": versions(),
    }
    # The folder appears with its study file, conditions and manifest at once: a crash while
    # setting it up leaves nothing that a rerun would refuse.
    with atomic_dir(out) as tmp:
        if study.path is not None:
            text = study.path.read_text(encoding="utf-8")
            (tmp / "study.toml").write_text(text, encoding="utf-8")
        rows = [{"condition": c.id, **c.varied} for c in study.conditions()]
        pd.DataFrame(rows).to_csv(tmp / "conditions.csv", index=False)
        (tmp / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")


@dataclass
class Progress:
    """Tasks done of the total, with the time left estimated from this run's pace."""

    total: int
    done: int
    stream: Any = sys.stderr
    start: float = 0.0
    done_here: int = 0

    def __post_init__(self) -> None:
        self.start = time.perf_counter()

    def step(self) -> None:
        self.done += 1
        self.done_here += 1
        elapsed = time.perf_counter() - self.start
        left = (self.total - self.done) * elapsed / self.done_here
        share = self.done / self.total if self.total else 1.0
        bar = "#" * int(30 * share)
        print(
            f"\r[{bar:<30}] {self.done}/{self.total} tasks, {_clock(elapsed)} elapsed, "
            f"about {_clock(left)} left",
            end="" if self.done < self.total else "\n",
            file=self.stream,
            flush=True,
        )


def _clock(seconds: float) -> str:
    whole = round(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def _client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    from dask.distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    # One single-threaded process per core: PyMC/nutpie release the GIL unevenly, and each
    # process keeps its own compiled models.
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,  # a cancelled task at a stop is not news
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def run_study(
    study: Study,
    out: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    on_result: Callable[[Task], None] | None = None,
) -> int:
    """Run (or resume) a study into ``out`` on a Dask cluster.

    Parameters
    ----------
    study
        The checked study (:func:`bayes_alliance.study.spec.load_study`).
    out
        The study folder; an existing one must hold the same study (it is resumed).
    scheduler
        Address of an existing Dask scheduler (``tcp://host:8786``); default a
        ``LocalCluster`` with ``workers`` single-threaded processes (default one per core).
    stop_after
        Stop after this many finished tasks (the rest stays pending, as after an interruption).
    on_result
        Called with each task after its file is written.

    Returns
    -------
    int
        The number of tasks finished in this run.
    """
    from contextlib import contextmanager

    from dask.distributed import as_completed

    out = Path(out)
    prepare_folder(study, out)
    todo = pending_tasks(study, out)
    total = len(all_tasks(study))
    bar = Progress(total, total - len(todo)) if progress else None
    if not todo:
        return 0
    finished = 0
    with contextmanager(_client)(scheduler, workers) as client:
        width = IN_FLIGHT_PER_WORKER * max(len(client.scheduler_info()["workers"]), 1)
        queue = iter(todo)
        running = as_completed()
        owner: dict[str, Task] = {}
        live: dict[str, Any] = {}

        def submit_next() -> None:
            task = next(queue, None)
            if task is not None:
                key = "task-" + "-".join(map(str, task.key))
                fut = client.submit(run_task, task, key=key, pure=False)
                owner[fut.key] = task
                live[fut.key] = fut
                running.add(fut)

        for _ in range(width):
            submit_next()
        for fut in running:
            task = owner.pop(fut.key)
            live.pop(fut.key, None)
            try:
                rows = fut.result()
            except Exception as exc:
                rows = failed_rows(task, f"{type(exc).__name__}: {exc}")
            fut.release()
            write_task(out, task, rows)
            finished += 1
            if bar is not None:
                bar.step()
            if on_result is not None:
                on_result(task)
            if stop_after is not None and finished >= stop_after:
                client.cancel(list(live.values()))
                break
            submit_next()
    return finished


__all__ = [
    "StudyFolderError",
    "all_tasks",
    "pending_tasks",
    "prepare_folder",
    "run_study",
    "task_path",
    "write_task",
]
