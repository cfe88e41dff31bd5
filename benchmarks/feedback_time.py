"""Time feedback for one patient with a few new sessions, against the fit it avoids.

    python benchmarks/feedback_time.py [--therapists 40] [--patients 6] [--sessions 15]
        [--draws 1000] [--chains 2] [--repeats 5]

Simulates a data set, holds back the last 3 sessions of one patient and every session of
another (a new patient of a known therapist), fits the rest once, and prints: the fit's
seconds, the seconds of :func:`bayes_alliance.feedback.patient_update.update_patient` (median of
``--repeats``) for the known and the new patient, of :func:`patient_feedback`, and of the
whole ``bayes-alliance feedback`` command in a fresh process (import, load of fit.nc with its
post-hoc recomputation, conditioning, plot, files).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--therapists", type=int, default=40)
    ap.add_argument("--patients", type=int, default=6)
    ap.add_argument("--sessions", type=int, default=15)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from bayes_alliance import SessionData, simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.feedback import patient_feedback as feedback
    from bayes_alliance.feedback import patient_update
    from bayes_alliance.inference.fit import fit

    df, _ = simulate(
        seed=11,
        n_therapists=args.therapists,
        patients_per_therapist=args.patients,
        sessions=args.sessions,
        p_missing_value=0.03,
    )
    known, new_id = "P0002", "P0009"
    held = ((df.patient == known) & (df.session > args.sessions - 3)) | (df.patient == new_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df[~held], **EXAMPLE_ROLES)
        t0 = time.perf_counter()
        result = fit(
            data,
            draws=args.draws,
            tune=args.draws,
            chains=args.chains,
            random_seed=1,
            progressbar=False,
        )
        fit_s = time.perf_counter() - t0
    new = df[held]
    n_draws = args.draws * args.chains
    print(f"{data.n_patients} patients, {data.n_therapists} therapists, {n_draws} draws")
    print(f"fit (compile + sample + post-hoc): {fit_s:.1f} s")

    def median_time(fn) -> float:
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    for label, pid in (("known patient + 3 new sessions", known), ("new patient", new_id)):
        s = median_time(lambda pid=pid: patient_update.update_patient(result, pid, new))
        print(f"update_patient, {label}: {s * 1000:.0f} ms")
    s = median_time(lambda: feedback.patient_feedback(result, known, new))
    print(f"patient_feedback (update + summary): {s * 1000:.0f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        result.save(Path(tmp) / "fit" / "fit.nc")
        new.to_csv(Path(tmp) / "new.csv", index=False)
        cmd = [
            sys.executable,
            "-m",
            "bayes_alliance.cli.app",
            "feedback",
            str(Path(tmp) / "fit"),
            "--patient",
            known,
            "--new-sessions",
            str(Path(tmp) / "new.csv"),
            "--out",
            str(Path(tmp) / "fb"),
        ]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        print(f"bayes-alliance feedback command (fresh process): {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
