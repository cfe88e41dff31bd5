"""Whole-process benchmark of the command line: what a user waits for and what lands on disk.

Usage::

    python benchmarks/cli_process.py [--cases M L-gaps] [--repeat 2] [--draws 1000]

Each case simulates a data set (written as CSV), then runs ``bayes-alliance fit`` as a fresh
process (two chains) ``--repeat`` times, and prints per run: wall seconds, peak resident memory
of the process (MB), the size of ``fit.nc`` and of the whole output folder (MB), the fit's own
timing record (sampling and post-hoc seconds) and whether the convergence check passed (exit
status 0 or 3). The first run of a case pays whatever compilation a cold cache costs; later runs
show the warm cache. ``--baseline`` runs, after each run of case M, the hand-written PyMC +
nutpie model of ``benchmarks/run.py`` (``--one M baseline``: same data, draws and tuning) as its
own process, timed the same way, and prints the ratio of the warm runs' median wall times
(the first run of ours excluded). ``--demo-seeds 1 2 3`` also runs ``bayes-alliance demo`` with those seeds
(the convergence check of the shipped example, several seeds). Timings are noisy on shared
machines: compare runs within one invocation.

Cases: M 240 x 15 (three levels, complete series); L-gaps 2,000 x 20 (100 therapists, 5% missing
values, 10% skipped sessions, 20% dropout); XL-gaps 20,000 x 20 (1,000 therapists, same gaps).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "M": dict(n_therapists=30, patients_per_therapist=8, sessions=15),
    "L": dict(n_therapists=100, patients_per_therapist=20, sessions=20),
    "L-gaps": dict(
        n_therapists=100,
        patients_per_therapist=20,
        sessions=20,
        p_missing_value=0.05,
        p_missing_session=0.1,
        dropout=0.2,
    ),
    "XL-gaps": dict(
        n_therapists=1000,
        patients_per_therapist=20,
        sessions=20,
        p_missing_value=0.05,
        p_missing_session=0.1,
        dropout=0.2,
    ),
}
BIN = Path(sys.executable).parent / "bayes-alliance"
FLAGS = [
    "--patient",
    "patient",
    "--therapist",
    "therapist",
    "--session",
    "session",
    "--predictor",
    "alliance",
    "--outcome",
    "symptoms",
]


def _run(cmd: list[str]) -> tuple[int, float, float]:
    """Exit status, wall seconds and peak resident MB of one child process (GNU time)."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as rss:
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], capture_output=True, text=True
        )
        wall = time.perf_counter() - t0
        peak_kb = float(rss.read().strip().splitlines()[-1])
    if proc.returncode not in (0, 3):
        print(proc.stderr[-2000:], file=sys.stderr)
    return proc.returncode, wall, peak_kb / 1024


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", default=["M"], choices=list(CASES))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--baseline", action="store_true", help="time run.py's baseline (case M)")
    ap.add_argument("--demo-seeds", nargs="*", type=int, default=[])
    args = ap.parse_args()
    from bayes_alliance import simulate

    work = Path(tempfile.mkdtemp(prefix="ba-bench-"))
    print("case | run | exit | wall s | peak MB | fit.nc MB | folder MB | sample s | post-hoc s")
    walls: dict[str, list[float]] = {"ours": [], "baseline": []}
    for case in args.cases:
        df, _ = simulate(seed=1, **CASES[case])
        csv = work / f"{case}.csv"
        df.to_csv(csv, index=False)
        for run in range(args.repeat):
            out = work / f"{case}-{run}"
            cmd = [str(BIN), "fit", str(csv), *FLAGS, "--out", str(out), "--quiet"]
            cmd += ["--draws", str(args.draws), "--tune", str(args.draws), "--seed", "1"]
            rc, wall, peak = _run(cmd)
            timing = {}
            if (out / "fit.nc").exists():
                from bayes_alliance.inference.fit import FitResult

                timing = FitResult.load(out / "fit.nc").provenance.get("timing", {})
            print(
                f"{case} | {run} | {rc} | {wall:.1f} | {peak:.0f} | "
                f"{_size_mb(out / 'fit.nc'):.1f} | {_size_mb(out):.1f} | "
                f"{timing.get('sample_s', float('nan')):.1f} | "
                f"{timing.get('posthoc_s', float('nan')):.1f}",
                flush=True,
            )
            if case == "M" and args.baseline:
                if run:
                    walls["ours"].append(wall)
                base = [sys.executable, str(Path(__file__).with_name("run.py")), "--one", "M"]
                base += ["baseline", "--draws", str(args.draws), "--chains", "2"]
                rc, wall, peak = _run(base)
                walls["baseline"].append(wall)
                print(f"M baseline | {run} | {rc} | {wall:.1f} | {peak:.0f}", flush=True)
    if walls["ours"]:
        ours, base = sorted(walls["ours"]), sorted(walls["baseline"])
        med_o, med_b = ours[len(ours) // 2], base[len(base) // 2]
        print(f"M warm ours / baseline (medians): {med_o:.1f} / {med_b:.1f} = {med_o / med_b:.2f}")
    for seed in args.demo_seeds:
        out = work / f"demo-{seed}"
        rc, wall, peak = _run([str(BIN), "demo", "--out", str(out), "--seed", str(seed), "--quiet"])
        conv = json.loads((out / "convergence.json").read_text())
        print(
            f"demo seed {seed}: exit {rc}, {wall:.0f} s, folder {_size_mb(out):.1f} MB, "
            f"max R-hat {conv['max_r_hat']:.3f}, min ESS bulk {conv['min_ess_bulk']:.0f}, "
            f"divergences {conv['divergences']}"
        )
    if not os.environ.get("BA_BENCH_KEEP"):
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
