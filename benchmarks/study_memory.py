"""Memory of a long study: the client's resident memory while a study of cheap tasks runs
(classic methods only, so thousands of tasks finish in minutes), sampled after every 250
finished tasks. Flat numbers mean results go to disk and are not held.

    python benchmarks/study_memory.py [--tasks 4000] [--workers 2] [--out /tmp/mem_study]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

STUDY = """
[study]
name = "memory"
seed = 1
replications = {reps}
parameters = ["state_effect", "outcome_autoregression"]

[simulate]
n_therapists = 1
patients_per_therapist = 20
sessions = 6

[conditions]
state_effect = [-0.2, 0.0]

[[methods]]
name = "two_step"
kind = "two_step"

[[methods]]
name = "observed_reml"
kind = "observed_reml"
"""


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    from bayes_alliance.study.runner import run_study
    from bayes_alliance.study.spec import load_study

    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="/tmp/mem_study")
    a = ap.parse_args()
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec = out.parent / f"{out.name}.toml"
    spec.write_text(STUDY.format(reps=max(a.tasks // 4, 1)))
    study = load_study(spec)
    t0 = time.perf_counter()
    count = 0

    def record(task: object) -> None:
        nonlocal count
        count += 1
        if count % 250 == 0:
            print(
                f"{count:6d} tasks  client RSS {rss_mb():7.1f} MB  "
                f"{time.perf_counter() - t0:6.1f} s",
                flush=True,
            )

    run_study(study, out, workers=a.workers, progress=False, on_result=record)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"done: {count} tasks, client peak RSS {peak:.1f} MB")


if __name__ == "__main__":
    main()
