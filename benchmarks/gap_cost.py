"""Cost of series with gaps against complete series: microseconds per log density + gradient
(numba mode, as nutpie runs it) and the Kalman-filter Ops' own forward and reverse kernels.

Usage::

    python benchmarks/gap_cost.py [--evals 200] [--cases complete old batched mixed] [--kernels]

Data: ``simulate(seed=1, n_therapists=100, patients_per_therapist=20, sessions=20)`` (L,
2,000 x 20), complete and with 5% missing values, 10% skipped sessions and 20% dropout
(L-gaps), as ``benchmarks/cli_process.py`` draws them; the default model of the command line
(three levels, integrated traits). Cases: ``complete`` L on the sums of products; ``old``
L-gaps with every patient through the reference Op (:mod:`bayes_alliance.kernels.kalman_op`);
``batched`` every patient through the batched Op
(:mod:`bayes_alliance.kernels.kalman_batch`); ``mixed`` complete patients
through the sums of products, the others through the batched Op; ``segment`` (the default)
series cut at their fully observed cells, short gaps as sums of products and the other
stretches through the batched Op (:mod:`bayes_alliance.model.segments`). An ``xl-`` prefix times
the case on XL-gaps (20,000 x 20, the same gaps; a tenth of the evaluations). ``--kernels``
times the two Ops' numba kernels alone on the L-gaps grid (forward, reverse). Timings are the best of five rounds, wall and CPU time of this process: on a shared
machine compare figures within one run.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

L = dict(n_therapists=100, patients_per_therapist=20, sessions=20)
XL = dict(n_therapists=1000, patients_per_therapist=20, sessions=20)
EXTRA: dict[str, Any] = {}
# Fits compile without fast-math (inference.sampling.compile_settings); --fastmath times
# PyTensor's default instead.
FASTMATH = False
GAPS = dict(p_missing_value=0.05, p_missing_session=0.1, dropout=0.2)


def _data(gaps: bool, xl: bool = False) -> Any:
    from bayes_alliance import simulate
    from bayes_alliance.data.session_data import SessionData

    df, _ = simulate(seed=1, **(XL if xl else L), **(GAPS if gaps else {}))
    return SessionData.from_frame(
        df, patient="patient", session="session", predictor="alliance",
        outcome="symptoms", therapist="therapist",
    )  # fmt: skip


def _best_of_5(fn: Callable[[], Any], evals: int) -> tuple[float, float]:
    """Microseconds per call, wall and CPU, the best of five rounds (the best round and the
    process's own CPU time move least when other jobs share the cores)."""
    fn()
    walls, cpus = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(evals):
            fn()
        walls.append(1e6 * (time.perf_counter() - t0) / evals)
        cpus.append(1e6 * (time.process_time() - c0) / evals)
    return min(walls), min(cpus)


def _model_case(case: str, evals: int) -> tuple[float, float, str]:
    import pytensor

    from bayes_alliance.model import build, likelihood
    from bayes_alliance.spec.model_spec import ModelSpec

    size, _, path = case.rpartition("-")
    likelihood.BATCHED_FILTER = path != "old"
    # absent before the mixed and segment paths existed (to time an older commit)
    likelihood.MIXED_PATH = path == "mixed"
    likelihood.SEGMENT_PATH = path == "segment"
    data = _data(gaps=path != "complete", xl=size == "xl")
    model = build.build_model(data, ModelSpec(therapist_level=True, **EXTRA))
    logp = model.logp()
    with pytensor.config.change_flags(numba__fastmath=FASTMATH):
        fn = pytensor.function(
            model.value_vars,
            [logp, *pytensor.grad(logp, model.value_vars)],
            mode="NUMBA",
            on_unused_input="ignore",
        )
    point = model.initial_point()
    x0 = [point[v.name] for v in model.value_vars]
    wall, cpu = _best_of_5(lambda: fn(*x0), max(evals // 10, 1) if size == "xl" else evals)
    paths = sorted(
        k
        for k in model.named_vars
        if k in ("moment_n", "gap_first", "mixed_order", "segment_first")
    )
    return wall, cpu, ",".join(paths)


def _kernel_inputs() -> tuple[Any, ...]:
    """The L-gaps grid with the lags, innovations and first-cell covariance of the simulation's
    scale (values do not change the cost: no branch depends on them)."""
    from bayes_alliance.model.grid import SeriesGrid

    data = _data(gaps=True)
    grid = SeriesGrid.of(data)
    n_p, n_s = grid.x.shape
    rng = np.random.default_rng(0)
    dx = (grid.x - 3.0) * grid.obs_x
    dy = (grid.y - 3.0) * grid.obs_y
    lag = [np.full(n_p, e) + 0.01 * rng.normal(size=n_p) for e in (0.3, 0.05, -0.2, 0.4)]
    first = [np.full(n_p, e) for e in (1.2, 0.2, 1.1)]
    sig = [np.full((1, n_s), e) for e in (1.0, 0.2, 0.9)]
    err = [np.zeros((n_p, n_s)), np.zeros((n_p, n_s))]
    return (dx, dy, grid.obs_x, grid.obs_y, grid.first, *lag, *first, *sig, *err)


def _kernels(evals: int) -> None:
    from bayes_alliance.kernels import kalman_batch, kalman_op

    grids = _kernel_inputs()
    n_p = grids[0].shape[0]
    rng = np.random.default_rng(1)
    gw = [rng.normal(size=n_p) for _ in range(7)]
    # the batched kernels read a column fastest from (S, P) arrays seen as (P, S)
    by_column = tuple(np.asfortranarray(e) if e.ndim == 2 else e for e in grids)
    # no measurement error as the model passes it to the batched Op: one (1, 1) variance
    no_error = (*by_column[:-2], np.zeros((1, 1)), np.zeros((1, 1)))
    for name, fwd, rev, ins in (
        ("old", kalman_op.kalman_factor, kalman_op.kalman_factor_vjp, grids),
        ("batched, (P, S) grids", kalman_batch.batch_factor, kalman_batch.batch_factor_vjp, grids),
        (
            "batched, (S, P) arrays",
            kalman_batch.batch_factor,
            kalman_batch.batch_factor_vjp,
            by_column,
        ),
        (
            "batched, (S, P) arrays, (1, 1) errors",
            kalman_batch.batch_factor,
            kalman_batch.batch_factor_vjp,
            no_error,
        ),
    ):
        out = fwd(*ins)
        tape = out[7]
        f_wall, f_cpu = _best_of_5(lambda f=fwd, i=ins: f(*i), evals)
        r_wall, r_cpu = _best_of_5(lambda r=rev, t=tape, i=ins: r(*i, t, *gw), evals)
        print(
            f"kernel {name}: forward {f_wall:.0f} us (CPU {f_cpu:.0f}), "
            f"reverse {r_wall:.0f} us (CPU {r_cpu:.0f})",
            flush=True,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--cases",
        nargs="*",
        default=["complete", "old", "batched", "mixed", "segment", "xl-batched", "xl-segment"],
    )
    ap.add_argument("--evals", type=int, default=200)
    ap.add_argument("--kernels", action="store_true")
    ap.add_argument("--fastmath", action="store_true", help="PyTensor's default, not the fits'")
    args = ap.parse_args()
    global FASTMATH
    FASTMATH = args.fastmath
    warnings.simplefilter("ignore")
    if args.kernels:
        _kernels(args.evals)
    print("case, us per logp+grad (wall, best of 5), CPU us, likelihood containers")
    for case in args.cases:
        wall, cpu, paths = _model_case(case, args.evals)
        print(f"{case}, {wall:.0f}, {cpu:.0f}, {paths}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
