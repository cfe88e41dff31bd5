"""Seconds per log-density + gradient evaluation of our model through JAX, by size.

Usage: ``python benchmarks/gradient_probe.py --sizes L XL``. Separates the cost of one gradient
(arithmetic, kernel launches) from the sampler's loop when judging a backend (e.g. on a GPU).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", nargs="+", default=["M"])
    ap.add_argument("--evals", type=int, default=200)
    args = ap.parse_args()
    import jax
    import numpy as np
    from pymc.sampling.jax import get_jaxified_logp
    from run import simulate_size

    from bayes_alliance.model.build import build_model
    from bayes_alliance.spec.model_spec import ModelSpec

    warnings.simplefilter("ignore")
    for size in args.sizes:
        model = build_model(simulate_size(size), ModelSpec(store_states=False))
        logp = get_jaxified_logp(model)
        point = model.initial_point()
        x0 = [np.asarray(point[v.name]) for v in model.value_vars]
        f = jax.jit(jax.value_and_grad(logp))
        t0 = time.perf_counter()
        jax.block_until_ready(f(x0))
        t1 = time.perf_counter()
        for _ in range(args.evals):
            out = f(x0)
        jax.block_until_ready(out)
        t2 = time.perf_counter()
        print(
            f"{size}: jit {t1 - t0:.2f} s, {1e6 * (t2 - t1) / args.evals:.0f} us per logp+grad "
            f"on {jax.devices()[0]}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
