"""Seconds per log-density + gradient evaluation of our model, by size and backend, same run.

Usage: ``python benchmarks/gradient_probe.py --sizes L-gaps XL-gaps [--backends jax numba]
[--evals 200]``. Separates the cost of one gradient (arithmetic, kernel launches) from the
sampler's loop when judging a backend (e.g. JAX on a GPU against numba on the CPU). ``jax`` is
PyMC's jaxified log density under ``jax.jit(jax.value_and_grad(...))`` on JAX's default device
(the gap sizes through :mod:`bayes_alliance.kernels.kalman_jax`); ``numba`` is the same
log density and gradient compiled by PyTensor's numba backend (what nutpie calls, here called
from Python). Both are evaluated at the same point; the largest difference between them is
printed as a check. Sizes as in ``benchmarks/run.py`` (``*-gaps``: 5% missing values, 10%
skipped sessions, 20% dropout).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


def _jax(model: Any, x0: list[Any]) -> tuple[Any, Any]:
    """(one evaluation, device name) through JAX."""
    import jax
    from pymc.sampling.jax import get_jaxified_logp

    import bayes_alliance.kernels.kalman_jax  # noqa: F401  (the Kalman filter Op in JAX)

    f = jax.jit(jax.value_and_grad(get_jaxified_logp(model)))

    def call() -> Any:
        out = f(x0)
        jax.block_until_ready(out)
        return out

    return call, str(jax.devices()[0])


def _numba(model: Any, x0: list[Any]) -> tuple[Any, Any]:
    """(one evaluation, device name) through PyTensor's numba backend."""
    import pytensor

    from bayes_alliance.inference.sampling import compile_settings

    logp = model.logp()
    with compile_settings():
        f = pytensor.function(
            model.value_vars,
            [logp, *pytensor.grad(logp, model.value_vars)],
            mode="NUMBA",
            trust_input=True,
        )
    return (lambda: f(*x0)), "cpu (numba)"


def _flat(out: Any, backend: str) -> Any:
    import numpy as np

    if backend == "jax":
        value, grads = out
        return np.concatenate([[float(value)], *(np.ravel(g) for g in grads)])
    return np.concatenate([np.ravel(o) for o in out])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", nargs="+", default=["M"])
    ap.add_argument("--backends", nargs="+", default=["jax"], choices=["jax", "numba"])
    ap.add_argument("--evals", type=int, default=200)
    args = ap.parse_args()
    import numpy as np
    from run import simulate_size

    from bayes_alliance.model.build import build_model
    from bayes_alliance.spec.model_spec import ModelSpec

    warnings.simplefilter("ignore")
    for size in args.sizes:
        model = build_model(simulate_size(size), ModelSpec(store_states=False))
        point = model.initial_point()
        x0 = [np.asarray(point[v.name], dtype="float64") for v in model.value_vars]
        first = {}
        for backend in args.backends:
            t0 = time.perf_counter()
            call, device = (_jax if backend == "jax" else _numba)(model, x0)
            first[backend] = _flat(call(), backend)
            t1 = time.perf_counter()
            for _ in range(args.evals):
                call()
            t2 = time.perf_counter()
            print(
                f"{size} {backend}: compile {t1 - t0:.1f} s, "
                f"{1e6 * (t2 - t1) / args.evals:.0f} us per logp+grad on {device}",
                flush=True,
            )
        if len(first) == 2:
            a, b = first.values()
            print(f"{size}: largest difference jax - numba {np.max(np.abs(a - b)):.2e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
