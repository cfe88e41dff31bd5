r"""The Kalman filter factor of :mod:`bayes_alliance.kernels.kalman_op` in JAX, for PyTensor's
JAX backend (numpyro, nutpie's JAX backend, a GPU).

Importing this module needs ``jax`` (the ``gpu`` extra) and registers
``pytensor.link.jax.dispatch.jax_funcify`` for :class:`~bayes_alliance.kernels.kalman_op.KalmanFactor`
and :class:`~bayes_alliance.kernels.kalman_op.KalmanFactorGrad`; the sampling code imports it only
when a JAX backend is asked for, so the numba path never imports JAX.

The filter is the one of ``kalman_op`` (same inputs, same outputs, same formulas), written for
all patients at once: the patients are a vector axis and ``jax.lax.scan`` runs over the sessions
(columns t = 0..S-1), so one step is a handful of element-wise operations on (P,) arrays and the
number of sequential steps is S, not P x S. Per column t, with ``new = first[:, t]`` (1 at t = 0:
every row starts at the first-cell covariance F and zero means) and ``keep = 1 - new``:

* transition into column t (``Phi_t = [[a, b], [c, d]]``; a, b, c, d given per patient (P,) or
  per patient and column (P, S): the transition *into* column t, as in continuous time where
  ``Phi_t = expm(A dt_t)``)::

      m' = keep Phi_t m,     C' = new F + keep (Phi_t C Phi_t' + Sigma_t);

* x entry (``o = ox``, error variance ``rx`` >= 0): ``e = (dx - mx0, 1 - mx1, -mx2)``,
  ``s = c11 + rx``, gains ``(kx, ky) = (c11, c12) / s``, ``m += o (kx, ky) e``,
  ``C -= o (kx, ky)' (c11, c12)``;
* y entry (``o = oy``): ``e = (dy - my0, -my1, 1 - my2)``, ``s = c22 + ry``,
  ``(kx, ky) = (c12, c22) / s``, likewise;

and each entry adds ``o / s`` times ``e0^2, e1 e0, e2 e0, e1^2, e1 e2, e2^2`` to
``q, g1, g2, l11, l12, l22`` and ``-o/2 (log 2 pi + log s)`` to ``log_c``. With ``rx = 0``
the gains are ``(1, c12 / c11)`` and ``C`` loses its x row, which is the error-free update of
the numba kernel, so one set of formulas serves both (the numba kernel keeps two for bit-exact
draws; here agreement to rounding is what is asked, tested to 1e-9).

The gradient is ``jax.vjp`` of the same function (reverse-mode through the scan), so the
hand-written reverse pass of the numba kernel is not repeated here; the forward's tape output
(the numba gradient's input) is an empty placeholder on this backend.

References: Durbin, J. & Koopman, S. J. (2012). *Time Series Analysis by State Space Methods*
(2nd ed.), ch. 4 (the filter and its prediction-error decomposition) and 5.7 (diffuse means
integrated out as a Gaussian factor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from bayes_alliance.kernels.factor_op import DIFFERENTIABLE, N_INPUTS
from bayes_alliance.kernels.kalman_batch import BatchFactor, BatchFactorGrad
from bayes_alliance.kernels.kalman_op import KalmanFactor, KalmanFactorGrad
from bayes_alliance.kernels.kalman_op_nb import LOG_2PI

# The float64 arithmetic of the numba kernels; PyTensor's JAX linker also turns this on for
# float64 graphs, but the function is used directly too (tests, benchmarks).
jax.config.update("jax_enable_x64", True)
# Sessions per iteration of the scan (1: a loop). More may help a GPU (fewer kernel launches)
# at a longer compile; unmeasured (a CPU trial of 4 and of full unrolling did not finish in 12
# minutes on the busy 2-core machine).
UNROLL: int | bool = 1


def _entry(
    m: tuple[Any, ...],
    cov: tuple[Any, Any, Any],
    acc: tuple[Any, ...],
    lc: Any,
    o: Any,
    d: Any,
    r: Any,
    which: int,
) -> tuple[tuple[Any, ...], tuple[Any, Any, Any], tuple[Any, ...], Any]:
    """One observed entry (``which`` 0: x, 1: y) for all patients: (P,) arrays throughout."""
    m0, m1, m2, m3, m4, m5 = m
    c11, c12, c22 = cov
    if which == 0:
        s, e0, e1, e2 = c11 + r, d - m0, 1.0 - m1, -m2
        kx_num, ky_num = c11, c12
    else:
        s, e0, e1, e2 = c22 + r, d - m3, -m4, 1.0 - m5
        kx_num, ky_num = c12, c22
    # An unobserved entry (o = 0) changes nothing; its s is replaced by 1 so that no 0/0 (a row
    # before its first session) reaches the gradient.
    s = jnp.where(o != 0.0, s, 1.0)
    w = o / s
    l11, l12, l22, g1, g2, q = acc
    acc = (
        l11 + w * e1 * e1,
        l12 + w * e1 * e2,
        l22 + w * e2 * e2,
        g1 + w * e1 * e0,
        g2 + w * e2 * e0,
        q + w * e0 * e0,
    )
    lc = lc - 0.5 * o * (LOG_2PI + jnp.log(s))
    kx, ky = o * kx_num / s, o * ky_num / s
    m = (m0 + kx * e0, m1 + kx * e1, m2 + kx * e2, m3 + ky * e0, m4 + ky * e1, m5 + ky * e2)
    if which == 0:
        cov = (c11 - kx * c11, c12 - kx * c12, c22 - ky * c12)
    else:
        cov = (c11 - kx * c12, c12 - ky * c12, c22 - ky * c22)
    return m, cov, acc, lc


def kalman_factor_jax(
    dx: Any,
    dy: Any,
    ox: Any,
    oy: Any,
    first: Any,
    a: Any,
    b: Any,
    c: Any,
    d: Any,
    f11: Any,
    f12: Any,
    f22: Any,
    s11: Any,
    s12: Any,
    s22: Any,
    rx: Any,
    ry: Any,
) -> tuple[Any, ...]:
    """The seven per-patient outputs ``(log_c, l11, l12, l22, g1, g2, q)`` of
    :func:`bayes_alliance.kernels.kalman_op.kalman_factor` (without its tape), vectorised over
    patients.

    Parameters
    ----------
    dx, dy, ox, oy, first
        (P, S): data minus the known mean, observed masks, first-cell mask.
    a, b, c, d
        Lag entries, (P,) or (P, S) (column t: the transition into column t; column 0 unused).
    f11, f12, f22
        (P,): first-cell covariance.
    s11, s12, s22
        (P, S) or (1, S): innovation covariance of the transition into each column (column 0
        unused), per patient or shared.
    rx, ry
        (P, S): measurement-error variances of the cells (0: none).

    Returns
    -------
    tuple
        Seven (P,) arrays.
    """
    dx = jnp.asarray(dx, dtype=jnp.float64)
    n_p, n_s = dx.shape

    def cols(e: Any) -> Any:
        # (S, P): the scan's leading axis is the session
        e = jnp.asarray(e, dtype=jnp.float64)
        if e.ndim == 1:
            e = e[:, None]
        return jnp.broadcast_to(e, (n_p, n_s)).T

    # Column 0 always starts a row at F (the numba kernel does so without reading first[:, 0]).
    new = cols(first).at[0].set(1.0)
    xs = (
        cols(dx), cols(dy), cols(ox), cols(oy), new,
        cols(a), cols(b), cols(c), cols(d),
        cols(s11), cols(s12), cols(s22), cols(rx), cols(ry),
    )  # fmt: skip
    fc = tuple(jnp.broadcast_to(jnp.asarray(f, dtype=jnp.float64), (n_p,)) for f in (f11, f12, f22))

    def step(carry: Any, x: Any) -> tuple[Any, None]:
        m, cov, acc, lc = carry
        dxt, dyt, oxt, oyt, nw, at, bt, ct, dt, q11, q12, q22, rxt, ryt = x
        keep = 1.0 - nw
        m0, m1, m2, m3, m4, m5 = m
        c11, c12, c22 = cov
        m = (
            keep * (at * m0 + bt * m3),
            keep * (at * m1 + bt * m4),
            keep * (at * m2 + bt * m5),
            keep * (ct * m0 + dt * m3),
            keep * (ct * m1 + dt * m4),
            keep * (ct * m2 + dt * m5),
        )
        p11 = at * at * c11 + 2 * at * bt * c12 + bt * bt * c22 + q11
        p12 = at * ct * c11 + (at * dt + bt * ct) * c12 + bt * dt * c22 + q12
        p22 = ct * ct * c11 + 2 * ct * dt * c12 + dt * dt * c22 + q22
        cov = (nw * fc[0] + keep * p11, nw * fc[1] + keep * p12, nw * fc[2] + keep * p22)
        m, cov, acc, lc = _entry(m, cov, acc, lc, oxt, dxt, rxt, 0)
        m, cov, acc, lc = _entry(m, cov, acc, lc, oyt, dyt, ryt, 1)
        return (m, cov, acc, lc), None

    zero = jnp.zeros(n_p)
    init = ((zero,) * 6, fc, (zero,) * 6, zero)
    (_, _, acc, lc), _ = jax.lax.scan(step, init, xs, unroll=UNROLL)
    return (lc, *acc)


def kalman_factor_vjp_jax(*args: Any) -> tuple[Any, ...]:
    """Gradient of :func:`kalman_factor_jax` in the layout of
    :func:`bayes_alliance.kernels.kalman_op.kalman_factor_vjp`: the 17 forward inputs, the
    tape (ignored), the seven output adjoints; returns the adjoints of the differentiable
    inputs (dx, dy, a, b, c, d, f11, f12, f22, s11, s12, s22, rx, ry) in their own shapes."""
    inputs, cotangents = args[:N_INPUTS], args[N_INPUTS + 1 :]
    masks = {i: inputs[i] for i in range(N_INPUTS) if i not in DIFFERENTIABLE}

    def forward(*diff: Any) -> tuple[Any, ...]:
        full = dict(masks)
        full.update(zip(DIFFERENTIABLE, diff, strict=True))
        return kalman_factor_jax(*(full[i] for i in range(N_INPUTS)))

    primal = [jnp.asarray(inputs[i], dtype=jnp.float64) for i in DIFFERENTIABLE]
    _, pull = jax.vjp(forward, *primal)
    return tuple(pull(tuple(jnp.asarray(g, dtype=jnp.float64) for g in cotangents)))


def _forward_with_tape(*inputs: Any) -> tuple[Any, ...]:
    # The tape feeds only the numba gradient; the JAX gradient recomputes what it needs, so an
    # empty 4-D array stands in for it (nothing is stored per cell).
    return (*kalman_factor_jax(*inputs), jnp.zeros((0, 0, 3, 9)))


def register(forward_op: type, grad_op: type | None = None) -> None:
    """Register the JAX functions for an Op class with :class:`KalmanFactor`'s inputs and
    outputs (seven per-patient outputs and a tape), and optionally its gradient Op class with
    :class:`KalmanFactorGrad`'s (forward inputs, tape, output adjoints)."""

    @jax_funcify.register(forward_op)
    def _forward(op: Any, node: Any = None, **kwargs: Any) -> Callable[..., Any]:
        return _forward_with_tape

    if grad_op is not None:

        @jax_funcify.register(grad_op)
        def _grad(op: Any, node: Any = None, **kwargs: Any) -> Callable[..., Any]:
            return kalman_factor_vjp_jax


register(KalmanFactor, KalmanFactorGrad)
# The model's default filter (vectorised numba kernels): the same inputs and outputs, so the
# same JAX functions (an error variance given as one (1, 1) value broadcasts like a grid).
register(BatchFactor, BatchFactorGrad)


__all__ = ["kalman_factor_jax", "kalman_factor_vjp_jax", "register"]
