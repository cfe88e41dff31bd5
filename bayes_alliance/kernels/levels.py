r"""Gaussian levels integrated out of a quadratic factor: small matrices as nested lists.

A block of latent coefficients ``x = (b, tau)`` enters a log density through a quadratic
factor, written throughout as

    log f(x) = const - 1/2 [kappa - 2 eta' x + x' Lambda x],

(a patient's series through the Kalman filter's ``A``, an end-of-treatment outcome through its
residual). With ``b ~ N(0, U U')`` (``U`` lower triangular) the integral over ``b`` is, exactly,

    log int f(x) N(b; 0, U U') db = const - 1/2 log|W| - 1/2 [kappa' - 2 eta_t' tau + tau' Lambda_t tau],
    W = I + U' Lambda_bb U,   Y = V^-1 U' [eta_b | Lambda_bt]   (V V' = W),
    kappa' = kappa - y_0' y_0,   eta_t = eta_t - Y_t' y_0,   Lambda_t = Lambda_tt - Y_t' Y_t,

(the matrix-determinant lemma and Woodbury's identity written with the prior's Cholesky factor,
so that a singular ``Lambda_bb`` from a short or gappy series is no problem). Patients'
factors in their therapist's ``tau`` add up, and the therapist level integrates out the same
way. Matrices are nested lists of arrays (entries broadcast over patients), and the literal
``0.0`` stands for a structural zero that the arithmetic skips: with k <= 5 series, entry-wise
graphs of fused element-wise loops ran about 7 times faster in the model than batched
``cholesky`` / ``solve_triangular`` (120 patients, 4 x 4: 38 us against 264 us per value and
gradient). The functions work on numpy and pytensor alike (``xp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Mat = list[list[Any]]


def _zero(a: Any) -> bool:
    return isinstance(a, float) and a == 0.0


def mul(a: Any, b: Any) -> Any:
    """``a * b`` with structural zeros kept as ``0.0``."""
    return 0.0 if _zero(a) or _zero(b) else a * b


def add(a: Any, b: Any) -> Any:
    """``a + b`` with structural zeros kept as ``0.0``."""
    if _zero(a):
        return b
    if _zero(b):
        return a
    return a + b


def dot(terms: list[tuple[Any, Any]]) -> Any:
    """``sum a * b`` over the pairs, skipping structural zeros."""
    out: Any = 0.0
    for a, b in terms:
        out = add(out, mul(a, b))
    return out


def chol(a: Mat, xp: Any = np) -> Mat:
    """Lower Cholesky factor of a symmetric positive-definite matrix (its lower triangle is
    read)."""
    n = len(a)
    low: Mat = [[0.0] * n for _ in range(n)]
    for j in range(n):
        s = a[j][j]
        for q in range(j):
            s = add(s, -mul(low[j][q], low[j][q]) if not _zero(low[j][q]) else 0.0)
        low[j][j] = xp.sqrt(s)
        for i in range(j + 1, n):
            s = a[i][j]
            for q in range(j):
                prod = mul(low[i][q], low[j][q])
                s = add(s, -prod if not _zero(prod) else 0.0)
            low[i][j] = 0.0 if _zero(s) else s / low[j][j]
    return low


def solve_lower(low: Mat, b: Mat) -> Mat:
    """``L^-1 B`` by forward substitution (``B`` n x m)."""
    n, m = len(low), len(b[0])
    out: Mat = [[0.0] * m for _ in range(n)]
    for c in range(m):
        for i in range(n):
            s = b[i][c]
            for q in range(i):
                prod = mul(low[i][q], out[q][c])
                s = add(s, -prod if not _zero(prod) else 0.0)
            out[i][c] = 0.0 if _zero(s) else s / low[i][i]
    return out


@dataclass
class Quadratic:
    """``-1/2 [kappa - 2 eta' x + x' Lambda x]`` plus ``log_c``: a log factor in ``x``."""

    lam: Mat
    eta: list[Any]
    kappa: Any
    log_c: Any

    @property
    def size(self) -> int:
        return len(self.eta)

    def plus(self, other: Quadratic) -> Quadratic:
        """The product of two factors in the same ``x``."""
        n = self.size
        return Quadratic(
            [[add(self.lam[i][j], other.lam[i][j]) for j in range(n)] for i in range(n)],
            [add(self.eta[i], other.eta[i]) for i in range(n)],
            add(self.kappa, other.kappa),
            add(self.log_c, other.log_c),
        )

    def map(self, fn: Any) -> Quadratic:
        """Every entry through ``fn`` (structural zeros stay), e.g. a sum over patients."""

        def f(a: Any) -> Any:
            return 0.0 if _zero(a) else fn(a)

        return Quadratic(
            [[f(a) for a in row] for row in self.lam],
            [f(a) for a in self.eta],
            f(self.kappa),
            f(self.log_c),
        )

    def value(self) -> Any:
        """The log factor at ``x`` of size 0 (everything integrated)."""
        return add(self.log_c, -0.5 * self.kappa if not _zero(self.kappa) else 0.0)

    def integrate(self, nb: int, prior_chol: Mat, xp: Any = np) -> Quadratic:
        """Integrate the first ``nb`` coefficients out under ``N(0, U U')`` (``prior_chol``
        the lower factor ``U``, entries broadcast against the factor's); see the module."""
        n = self.size
        rest = range(nb, n)
        lam_bb = [row[:nb] for row in self.lam[:nb]]
        # W = I + U' (Lambda_bb U)
        lu = [[dot([(lam_bb[i][q], prior_chol[q][j]) for q in range(nb)]) for j in range(nb)]
              for i in range(nb)]  # fmt: skip
        w = [[add(1.0 if i == j else 0.0, dot([(prior_chol[q][i], lu[q][j]) for q in range(nb)]))
              for j in range(nb)] for i in range(nb)]  # fmt: skip
        v = chol(w, xp)
        rhs_cols = [[self.eta[q] for q in range(nb)]] + [
            [self.lam[q][t] for q in range(nb)] for t in rest
        ]
        rhs = [
            [dot([(prior_chol[q][i], col[q]) for q in range(nb)]) for col in rhs_cols]
            for i in range(nb)
        ]
        y = solve_lower(v, rhs)
        log_det = 0.0
        for i in range(nb):
            log_det = add(log_det, xp.log(v[i][i]))
        m = n - nb
        lam = [
            [
                add(self.lam[nb + a][nb + c], -dot([(y[i][1 + a], y[i][1 + c]) for i in range(nb)]))
                for c in range(m)
            ]
            for a in range(m)
        ]
        eta = [
            add(self.eta[nb + a], -dot([(y[i][1 + a], y[i][0]) for i in range(nb)]))
            for a in range(m)
        ]
        kappa = add(self.kappa, -dot([(y[i][0], y[i][0]) for i in range(nb)]))
        return Quadratic(lam, eta, kappa, add(self.log_c, -log_det if not _zero(log_det) else 0.0))


__all__ = ["Mat", "Quadratic", "add", "chol", "dot", "mul", "solve_lower"]
