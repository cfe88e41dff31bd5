"""Digests of what a set of seeded fits produce, to show that a change of code kept behaviour.

Run it on two checkouts (e.g. before and after a refactoring) and compare the two JSON files::

    python benchmarks/behaviour_digest.py run --out before.json     # on the old code
    python benchmarks/behaviour_digest.py run --out after.json      # on the new code
    python benchmarks/behaviour_digest.py diff before.json after.json

Only the command line and the top-level names of ``bayes_alliance`` are used, so the script
runs unchanged on code whose modules moved. Each case fits a model with a fixed seed and records

- a SHA-256 of every posterior variable's float64 bytes read straight from ``fit.nc`` (the
  sampled draws: equal digests mean identical draws);
- digests of the derived numbers a user sees: the CSV tables the command writes, the post-hoc
  quantities recomputed on load (latent means, states, pointwise log-likelihood, replicates),
  effects, R-squared, prior predictive draws, feedback and leave-one-patient-out values;
- the arrays themselves (``--arrays DIR``), so that ``diff`` can say how far apart two runs are
  when a digest differs (bit-for-bit or within rounding).

The cases cover both model families and the options whose code paths differ: the demo, random
slopes at both levels with a moderator and gaps, a therapist-level baseline with a lag-0 path,
a free first session and a trend, per-session innovations with session means, sampled traits,
the single outcome equation, a compiled refit, within-level mediation and two informants with an
end-of-treatment outcome.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

SMALL = ["--draws", "150", "--tune", "150", "--chains", "2", "--quiet"]


def _digest(values: np.ndarray) -> str:
    arr = np.ascontiguousarray(np.asarray(values))
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float64)
    return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:16]


def _cli(*argv: str) -> None:
    cmd = [sys.executable, "-m", "bayes_alliance.cli", *argv]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")


class Recorder:
    def __init__(self, arrays: Path | None) -> None:
        self.out: dict[str, dict[str, str]] = {}
        self.arrays = arrays
        self.store: dict[str, np.ndarray] = {}

    def add(self, case: str, name: str, values: object) -> None:
        if isinstance(values, pd.DataFrame):
            self.out.setdefault(case, {})[name] = hashlib.sha256(
                values.to_csv().encode()
            ).hexdigest()[:16]
            num = values.select_dtypes("number")
            if not num.empty:
                self.store[f"{case}/{name}"] = num.to_numpy(dtype=float)
            return
        arr = np.asarray(values)
        self.out.setdefault(case, {})[name] = _digest(arr)
        if arr.dtype.kind in "fiub":
            self.store[f"{case}/{name}"] = arr.astype(float)

    def text(self, case: str, name: str, path: Path) -> None:
        self.out.setdefault(case, {})[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        if path.suffix == ".csv":
            df = pd.read_csv(path).select_dtypes("number")
            if not df.empty:
                self.store[f"{case}/{name}"] = df.to_numpy(dtype=float)

    def tree(self, case: str, path: Path, group: str = "posterior") -> None:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            ds = tree[group].to_dataset()
            for var in sorted(ds.data_vars):
                self.add(case, f"{group}.{var}", ds[var].values)


def _fit_files(rec: Recorder, case: str, out: Path) -> None:
    rec.tree(case, out / "fit.nc")
    for name in ("summary.csv", "effects.csv", "r2.csv"):
        if (out / name).exists():
            rec.text(case, name, out / name)


def _posthoc(rec: Recorder, case: str, out: Path, prior: bool = False) -> None:
    import bayes_alliance as ba
    from bayes_alliance.inference.state_group import states_dataset
    from bayes_alliance.inference.unit_group import posterior_of

    result = ba.FitResult.load(out / "fit.nc")
    # the per-unit draws and the states live in their own groups (unit_draws, latent_states)
    post = posterior_of(result.idata)
    states = states_dataset(result.idata)
    if states is not None:
        post = post.assign({k: states[k] for k in states.data_vars})
    for var in sorted(post.data_vars):
        if var.startswith(("trait_", "therapist_", "state_", "latent_")):
            rec.add(case, f"posthoc.{var}", post[var].values)
    if "posterior_predictive" in result.idata.children:
        pp = result.idata.posterior_predictive.to_dataset()
        for var in sorted(pp.data_vars):
            rec.add(case, f"replicate.{var}", pp[var].values)
    if result.spec.traits == "integrated":
        ll = result.ensure_log_likelihood().log_likelihood.to_dataset()
        for var in sorted(ll.data_vars):
            rec.add(case, f"loglik.{var}", ll[var].values)
    rec.add(case, "effects()", result.effects())
    rec.add(case, "r2()", result.r2())
    if prior:
        tree = result.prior_predictive(draws=40, random_seed=5)
        for group in ("prior", "prior_predictive"):
            ds = tree[group].to_dataset()
            for var in sorted(ds.data_vars):
                rec.add(case, f"{group}.{var}", ds[var].values)


def run(args: argparse.Namespace) -> None:
    import bayes_alliance as ba

    rec = Recorder(Path(args.arrays) if args.arrays else None)
    work = Path(tempfile.mkdtemp(prefix="digest_"))
    times: dict[str, float] = {}
    only = set(args.cases.split(",")) if args.cases else None

    def want(case: str) -> bool:
        if only is None or case in only:
            print(f"-- {case}", flush=True)
            times[case] = time.perf_counter()
            return True
        return False

    def three_level(seed: int, **extra: object) -> Path:
        df, _ = ba.simulate(
            seed=seed, n_therapists=8, patients_per_therapist=4, sessions=8, **extra
        )
        path = work / f"sim{seed}.csv"
        df.to_csv(path, index=False)
        return path

    roles = ["--patient", "patient", "--session", "session"]
    roles += ["--predictor", "alliance", "--outcome", "symptoms"]
    ther = [*roles, "--therapist", "therapist"]

    if want("demo"):
        out = work / "demo"
        _cli("demo", "--out", str(out), "--quiet", "--force")
        _fit_files(rec, "demo", out)
        _posthoc(rec, "demo", out, prior=True)
        rec.text("demo", "classic.csv", out / "classic.csv")

    if want("slopes_gaps"):
        data = three_level(
            3,
            p_missing_session=0.1,
            p_missing_value=0.05,
            dropout=0.1,
            moderator=True,
            sd_state_effect_patient=0.1,
            sd_state_effect_therapist=0.05,
        )
        out = work / "slopes"
        _cli(
            "fit",
            str(data),
            *ther,
            "--covariates",
            "moderator",
            "--moderators",
            "moderator",
            "--random-slopes",
            "patient,therapist",
            "--out",
            str(out),
            "--seed",
            "11",
            *SMALL,
        )
        _fit_files(rec, "slopes_gaps", out)
        _posthoc(rec, "slopes_gaps", out, prior=True)
        fb = work / "fb"
        pid = str(pd.read_csv(data)["patient"].iloc[0])
        _cli("feedback", str(out), "--patient", pid, "--out", str(fb), "--profiles")
        feedback = json.loads((fb / "feedback.json").read_text())
        for key in ("provenance", "seconds_conditioning"):  # timing differs from run to run
            feedback.pop(key, None)
        rec.add(
            "slopes_gaps",
            "feedback.json",
            np.frombuffer(
                json.dumps(feedback, sort_keys=True, default=str).encode(), dtype=np.uint8
            ),
        )
        rec.text("slopes_gaps", "profiles.csv", fb / "profiles.csv")

    if want("baseline_free_trend"):
        data = three_level(
            4, baseline_effect_predictor=0.4, baseline_effect_outcome=-0.2, p_missing_value=0.05
        )
        out = work / "baseline"
        _cli(
            "fit",
            str(data),
            *ther,
            "--covariates",
            "baseline",
            "--baseline",
            "baseline",
            "--baseline-level",
            "patient",
            "--same-session",
            "predictor_to_outcome",
            "--first-session",
            "free",
            "--trend",
            "--out",
            str(out),
            "--seed",
            "12",
            *SMALL,
        )
        _fit_files(rec, "baseline_free_trend", out)
        _posthoc(rec, "baseline_free_trend", out, prior=True)

    if want("riclpm"):
        data = three_level(5)
        out = work / "riclpm"
        _cli(
            "fit",
            str(data),
            *roles,
            "--session-means",
            "--innovations",
            "session",
            "--first-session",
            "free",
            "--out",
            str(out),
            "--seed",
            "13",
            *SMALL,
        )
        _fit_files(rec, "riclpm", out)
        _posthoc(rec, "riclpm", out, prior=True)
        # A second model on the same data for leave-one-patient-out comparison.
        other = work / "riclpm_plain"
        _cli("fit", str(data), *roles, "--out", str(other), "--seed", "13", *SMALL)
        _fit_files(rec, "riclpm", other)
        cmp_csv = work / "cmp.csv"
        _cli("compare", str(other), str(out), "--out", str(cmp_csv), "--force")
        rec.text("riclpm", "compare_patient.csv", cmp_csv)
        _cli("compare", str(other), str(out), "--unit", "session", "--out", str(cmp_csv), "--force")
        rec.text("riclpm", "compare_session.csv", cmp_csv)

    if want("sampled_outcome"):
        data = three_level(6)
        out = work / "sampled"
        _cli(
            "fit",
            str(data),
            *ther,
            "--traits",
            "sampled",
            "--out",
            str(out),
            "--seed",
            "14",
            *SMALL,
        )
        _fit_files(rec, "sampled_outcome", out)
        _posthoc(rec, "sampled_outcome", out)
        out = work / "outcome_eq"
        _cli(
            "fit",
            str(data),
            *ther,
            "--equations",
            "outcome",
            "--out",
            str(out),
            "--seed",
            "15",
            *SMALL,
        )
        _fit_files(rec, "sampled_outcome", out)
        _posthoc(rec, "sampled_outcome", out)

    if want("compiled_refit"):
        df, _ = ba.simulate(seed=7, n_therapists=6, patients_per_therapist=4, sessions=8)
        df2, _ = ba.simulate(seed=8, n_therapists=6, patients_per_therapist=4, sessions=8)
        kw = dict(
            patient="patient",
            session="session",
            predictor="alliance",
            outcome="symptoms",
            therapist="therapist",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d1 = ba.SessionData.from_frame(df, **kw)
            d2 = ba.SessionData.from_frame(df2, **kw)
            compiled = ba.compile_model(d1, ba.ModelSpec(therapist_level=True))
            res = compiled.fit(d2, draws=150, tune=150, random_seed=3, progressbar=False)
        from bayes_alliance.inference.unit_group import posterior_of

        refit = posterior_of(res.idata)  # the per-unit draws too (their own group)
        for var in sorted(refit.data_vars):
            rec.add("compiled_refit", f"posterior.{var}", refit[var].values)

    if want("mediation"):
        csv = Path(ba.__file__).parent / "datasets" / "mediation_within.csv"
        out = work / "mediation"
        head = pd.read_csv(csv).columns
        assert "emotional_processing" in head, list(head)
        _cli(
            "fit",
            str(csv),
            "--patient",
            "patient",
            "--session",
            "session",
            "--predictor",
            "alliance",
            "--outcome",
            "symptoms",
            "--mediator",
            "emotional_processing",
            "--out",
            str(out),
            "--seed",
            "21",
            *SMALL,
        )
        _fit_files(rec, "mediation", out)

    if want("informants_end"):
        sim, _ = ba.simulate_mechanisms(
            seed=31, design="informants", n_therapists=5, patients_per_therapist=8, n_sessions=10
        )
        path = work / "informants.csv"
        sim.to_csv(path, index=False)
        out = work / "informants"
        _cli(
            "fit",
            str(path),
            *ther,
            "--second-predictor",
            "alliance_therapist",
            "--out",
            str(out),
            "--seed",
            "22",
            *SMALL,
        )
        _fit_files(rec, "informants_end", out)
        sim, _ = ba.simulate_mechanisms(
            seed=32,
            design="two_series",
            patients_per_therapist=60,
            n_sessions=10,
            change_sd=0.05,
            end_effects=(-0.5, -3.0),
            missing=0.05,
        )
        path = work / "end.csv"
        sim.to_csv(path, index=False)
        out = work / "end"
        _cli(
            "fit",
            str(path),
            *roles,
            "--end-outcome",
            "post_symptoms",
            "--out",
            str(out),
            "--seed",
            "23",
            *SMALL,
        )
        _fit_files(rec, "informants_end", out)

    for case, t0 in times.items():
        print(f"{case}: {time.perf_counter() - t0:.0f} s")
    Path(args.out).write_text(json.dumps(rec.out, indent=1, sort_keys=True))
    if rec.arrays:
        rec.arrays.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            rec.arrays / "arrays.npz", **{k.replace("/", "__"): v for k, v in rec.store.items()}
        )
    print(f"wrote {args.out} ({sum(len(v) for v in rec.out.values())} digests)")


def diff(args: argparse.Namespace) -> None:
    a = json.loads(Path(args.first).read_text())
    b = json.loads(Path(args.second).read_text())
    arrays = []
    for path in (args.first_arrays, args.second_arrays):
        arrays.append(np.load(Path(path) / "arrays.npz") if path else None)
    same = differ = 0
    for case in sorted(set(a) | set(b)):
        for name in sorted(set(a.get(case, {})) | set(b.get(case, {}))):
            da, db = a.get(case, {}).get(name), b.get(case, {}).get(name)
            if da == db:
                same += 1
                continue
            differ += 1
            note = ""
            key = f"{case}__{name}"
            if (
                arrays[0] is not None
                and arrays[1] is not None
                and key in arrays[0]
                and key in arrays[1]
            ):
                x, y = arrays[0][key], arrays[1][key]
                if x.shape == y.shape:
                    with np.errstate(invalid="ignore"):
                        d = np.nanmax(np.abs(x - y)) if x.size else 0.0
                    note = f"max abs diff {d:.3g}"
                else:
                    note = f"shapes {x.shape} vs {y.shape}"
            print(f"DIFFERS {case}: {name} ({da} vs {db}) {note}")
    print(f"{same} digests equal, {differ} differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--arrays", help="folder for the arrays behind the digests")
    r.add_argument("--cases", help="comma-separated subset of the cases")
    d = sub.add_parser("diff")
    d.add_argument("first")
    d.add_argument("second")
    d.add_argument("--first-arrays")
    d.add_argument("--second-arrays")
    args = parser.parse_args()
    run(args) if args.command == "run" else diff(args)


if __name__ == "__main__":
    main()
