"""Speed and memory benchmark: our model against a plain hand-written PyMC baseline, same run.

Usage::

    python benchmarks/run.py --sizes S M [--draws 1000] [--chains 2]

Sizes (patients x sessions, therapists): S 50 x 10 (10), M 240 x 15 (30), L 2,000 x 20 (100),
XL 20,000 x 20 (1,000); L-gaps and XL-gaps are L and XL with 5% missing values, 10% skipped
sessions and 20% dropout (the Kalman filter path; ours only, the baseline needs complete data). Each (size, model) runs in a fresh subprocess, which reports build,
compile and sampling seconds, ESS_bulk and ESS/s of the state effect, and its peak resident
memory. The baseline is written below: non-centred random intercepts, latent means, and a
bivariate normal on each transition of complete data (first session dropped), sampled with nutpie.
Timings are noisy on shared machines: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

SIZES = {
    "S": (50, 10, 10),
    "M": (240, 15, 30),
    "L": (2000, 20, 100),
    "XL": (20000, 20, 1000),
    "L-gaps": (2000, 20, 100),
    "XL-gaps": (20000, 20, 1000),
}
# the gaps of the registry cases (as benchmarks/cli_process.py)
GAPS = dict(p_missing_value=0.05, p_missing_session=0.1, dropout=0.2)


def simulate_size(size: str, seed: int = 1):
    """The standard data set of a size: complete series (with gaps for ``*-gaps``), one seed."""
    from bayes_alliance import SessionData, simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES

    n_pat, n_ses, n_ther = SIZES[size]
    gaps = GAPS if size.endswith("-gaps") else {}
    df, _ = simulate(
        seed=seed,
        n_therapists=n_ther,
        patients_per_therapist=n_pat // n_ther,
        sessions=n_ses,
        **gaps,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SessionData.from_frame(df, **EXAMPLE_ROLES)


def baseline_model(data):
    """A plain hand-written latent cross-lagged model (what a user would write first)."""
    import pymc as pm
    import pytensor.tensor as pt

    x, y = data.x, data.y
    tj = data.patient_therapist
    with pm.Model() as m:
        mu = pm.Normal("mu", 0, 5, shape=2)
        sd_t = pm.HalfNormal("sd_t", 1, shape=2)
        sd_p = pm.HalfNormal("sd_p", 1, shape=2)
        a = pm.Normal("a_raw", 0, 1, shape=(data.n_therapists, 2)) * sd_t
        b = pm.Normal("b_raw", 0, 1, shape=(data.n_patients, 2)) * sd_p
        beta = pm.Normal("beta", 0, 1, shape=2)
        means = mu + a[tj] + b
        mx = means[:, 0]
        my = means[:, 1] + beta[0] * b[:, 0] + beta[1] * a[tj][:, 0]
        phi = pm.Normal("phi", 0, 0.5, shape=(2, 2))
        chol, _, _ = pm.LKJCholeskyCov(
            "innov", n=2, eta=2, sd_dist=pm.HalfNormal.dist(1), compute_corr=True
        )
        wx = x - mx[:, None]
        wy = y - my[:, None]
        prev = pt.stack([wx[:, :-1].ravel(), wy[:, :-1].ravel()], -1)
        cur = pt.stack([wx[:, 1:].ravel(), wy[:, 1:].ravel()], -1)
        pm.Deterministic("state_effect", phi[1, 0])
        # The transitions depend on the latent means, so their density is a potential.
        pm.Potential(
            "transitions", pm.logp(pm.MvNormal.dist(mu=prev @ phi.T, chol=chol), cur).sum()
        )
    return m


def _ess(trace, name: str) -> float:
    try:
        import arviz_stats as azs

        return float(azs.ess(trace, var_names=[name])[name])
    except (ImportError, AttributeError):  # the GPU machine's arviz_stats lacked ess at top level
        from numpyro.diagnostics import effective_sample_size

        return float(effective_sample_size(trace.posterior[name].values))


def run_one(size: str, which: str, draws: int, chains: int, backend: str, refits: int) -> dict:
    data = simulate_size(size)
    t0 = time.perf_counter()
    if which.startswith("ours"):
        from bayes_alliance.model.build import build_model
        from bayes_alliance.spec.model_spec import ModelSpec

        traits = "sampled" if which == "ours-sampled" else "integrated"
        model = build_model(data, ModelSpec(store_states=False, traits=traits))
    else:
        model = baseline_model(data)
    t1 = time.perf_counter()
    if backend != "numba":
        # JAX functions of the Kalman filter Op (the gap sizes' likelihood)
        import bayes_alliance.kernels.kalman_jax  # noqa: F401
    if backend == "numpyro":
        import pymc as pm

        # The whole sampling loop is one XLA program (chains vectorised): compile time is inside.
        trace = pm.sample(
            draws=draws,
            tune=draws,
            chains=chains,
            model=model,
            random_seed=1,
            nuts_sampler="numpyro",
            nuts_sampler_kwargs={"chain_method": "vectorized"},
            progressbar=False,
            compute_convergence_checks=False,
        )
        t2 = t1
    else:
        import nutpie

        kw = {"backend": "jax", "gradient_backend": "jax"} if backend == "nutpie-jax" else {}
        compiled = nutpie.compile_pymc_model(model, **kw)
        t2 = time.perf_counter()
        trace = nutpie.sample(
            compiled, draws=draws, tune=draws, chains=chains, seed=1, progress_bar=False
        )
    t3 = time.perf_counter()
    ess = _ess(trace, "state_effect")
    out = {
        "size": size,
        "model": which,
        "backend": backend,
        "build_s": t1 - t0,
        "compile_s": t2 - t1,
        "sample_s": t3 - t2,
        "total_s": t3 - t0,
        "ess_bulk": ess,
        "ess_per_s": ess / (t3 - t2),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if refits and which == "ours" and backend == "numba":
        from bayes_alliance.inference.compiled import compile_model

        cm = compile_model(data, ModelSpec(store_states=False))
        times = []
        for seed in range(2, 2 + refits):
            new = simulate_size(size, seed=seed)
            t = time.perf_counter()
            cm.fit(new, random_seed=seed, draws=draws, tune=draws, chains=chains, complete=False)
            times.append(time.perf_counter() - t)
        out["refit_s"] = sum(times) / len(times)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="+", default=["S", "M"], choices=list(SIZES))
    ap.add_argument(
        "--models",
        nargs="+",
        default=["ours", "baseline"],
        choices=["ours", "ours-sampled", "baseline"],
        help="ours: integrated traits (default model); ours-sampled: traits sampled by NUTS",
    )
    ap.add_argument(
        "--backend",
        default="numba",
        choices=["numba", "nutpie-jax", "numpyro"],
        help="numba: nutpie's default; nutpie-jax: nutpie with JAX functions; "
        "numpyro: PyMC's JAX path with vectorised chains (for a GPU)",
    )
    ap.add_argument("--refits", type=int, default=0, help="also time N refits of ours")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--one", nargs=2, metavar=("SIZE", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(
            json.dumps(
                run_one(
                    args.one[0], args.one[1], args.draws, args.chains, args.backend, args.refits
                )
            )
        )
        return 0
    rows = []
    for size in args.sizes:
        for which in args.models:
            if which == "baseline" and size.endswith("-gaps"):
                print(f"{size}: no baseline (it needs complete series)", flush=True)
                continue
            cmd = [
                sys.executable,
                __file__,
                "--one",
                size,
                which,
                "--draws",
                str(args.draws),
                "--chains",
                str(args.chains),
                "--backend",
                args.backend,
                "--refits",
                str(args.refits),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{size} {which} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            refit = f" refit {r['refit_s']:5.1f}s" if "refit_s" in r else ""
            print(
                f"{size:>2} {which:<12} {args.backend:<10} build {r['build_s']:6.1f}s compile {r['compile_s']:6.1f}s sample "
                f"{r['sample_s']:6.1f}s total {r['total_s']:6.1f}s ESS {r['ess_bulk']:7.0f} "
                f"ESS/s {r['ess_per_s']:7.1f} peak {r['peak_mb']:7.0f} MB{refit}",
                flush=True,
            )
    for size in args.sizes:
        by = {r["model"]: r for r in rows if r["size"] == size}
        if {"ours", "baseline"} <= set(by):
            o, b = by["ours"], by["baseline"]
            print(
                f"{size}: ours/baseline total time {o['total_s'] / b['total_s']:.2f}x, "
                f"ESS/s {o['ess_per_s'] / b['ess_per_s']:.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
