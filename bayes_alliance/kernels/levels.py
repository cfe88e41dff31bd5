r"""Gaussian levels integrated out of a quadratic factor.

A block of latent coefficients ``x = (b, tau)`` enters a log density through a quadratic
factor, written throughout as

    log f(x) = log_c - 1/2 [kappa - 2 eta' x + x' Lambda x],

(a patient's series through the Kalman filter's ``A``, an end-of-treatment outcome through its
residual). With ``b ~ N(0, U U')`` (``U`` lower triangular) the integral over ``b`` is, exactly,

    log int f(x) N(b; 0, U U') db
        = log_c - 1/2 log|W| - 1/2 [kappa' - 2 eta_t' tau + tau' Lambda_t tau],
    W = I + U' Lambda_bb U,   Y = V^-1 U' [eta_b | Lambda_bt]   (V V' = W),
    kappa' = kappa - y_0' y_0,   eta_t = eta_t - Y_t' y_0,   Lambda_t = Lambda_tt - Y_t' Y_t,

(the matrix-determinant lemma and Woodbury's identity written with the prior's Cholesky factor,
so that a singular ``Lambda_bb`` from a short or gappy series is no problem). Patients'
factors in their therapist's ``tau`` add up, and the therapist level integrates out the same
way. Entries carry one leading batch axis (patients, therapists); the functions work on numpy
and pytensor alike (``xp``). The factorisations are one batched numba Op
(:mod:`bayes_alliance.kernels.small_chol`): pytensor's batched ``cholesky`` and triangular
solves cost one LAPACK call per matrix (more than the Kalman filter itself), and an
entry-wise unrolled form took minutes to compile for eight coefficients. The mechanism model's
pytensor graph integrates both levels in one Op instead (:mod:`bayes_alliance.kernels.level_op`,
tested against this composition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_alliance.kernels.small_chol import chol_solve, chol_solve_op


def _chol_solve(xp: Any, w: Any, r: Any) -> tuple[Any, Any]:
    """``chol(W)^-1 R`` and ``sum log diag chol(W)`` over the batch (one numba loop)."""
    if xp is np:
        return chol_solve(np.ascontiguousarray(w), np.ascontiguousarray(r))
    out = chol_solve_op.make_node(w, r).outputs
    return out[0], out[1]


def _t(a: Any) -> Any:
    return a.swapaxes(-1, -2) if isinstance(a, np.ndarray) else a.mT


@dataclass
class Quadratic:
    """``log_c - 1/2 [kappa - 2 eta' x + x' Lambda x]``: a log factor in ``x``; ``lam``
    (..., n, n), ``eta`` (..., n), ``kappa`` and ``log_c`` (...)."""

    lam: Any
    eta: Any
    kappa: Any
    log_c: Any

    def plus(self, other: Quadratic) -> Quadratic:
        """The product of two factors in the same ``x``."""
        return Quadratic(
            self.lam + other.lam,
            self.eta + other.eta,
            self.kappa + other.kappa,
            self.log_c + other.log_c,
        )

    def map(self, fn: Any) -> Quadratic:
        """Every part through ``fn`` (linear in the batch axis: e.g. a sum over patients by
        therapist)."""
        return Quadratic(fn(self.lam), fn(self.eta), fn(self.kappa), fn(self.log_c))

    def value(self) -> Any:
        """The log factor at ``x`` of size 0 (everything integrated)."""
        return self.log_c - 0.5 * self.kappa

    def integrate(self, nb: int, prior_chol: Any, xp: Any = np) -> Quadratic:
        """Integrate the first ``nb`` coefficients out under ``N(0, U U')`` (``prior_chol`` the
        lower factor ``U`` (nb, nb), shared by the batch); see the module."""
        lam_bb = self.lam[..., :nb, :nb]
        u_t = _t(prior_chol)
        w = u_t @ lam_bb @ prior_chol + np.eye(nb)
        rhs = xp.concatenate([self.eta[..., :nb, None], self.lam[..., :nb, nb:]], axis=-1)
        y, log_det = _chol_solve(xp, w, u_t @ rhs)
        y0, yt = y[..., 0], y[..., 1:]
        return Quadratic(
            self.lam[..., nb:, nb:] - _t(yt) @ yt,
            self.eta[..., nb:] - xp.sum(yt * y0[..., None], axis=-2),
            self.kappa - xp.sum(y0 * y0, axis=-1),
            self.log_c - log_det,
        )


__all__ = ["Quadratic"]
