r"""Series with missing cells: the missing cells integrated out by a Kalman filter.

A skipped session or a missing rating leaves a cell unobserved inside a patient's series.
Given the parameters and the patient's latent mean M, the observed cells are Gaussian
(docs/methods.md, section 'Likelihood')::

    z~_t = M + w_t + eps_t  (observed entries only),   w_t = Phi w_(t-1) + u_t,
    u_t ~ N(0, Sigma_t),   w_1 ~ N(0, F),   eps_t ~ N(0, diag(omega_x^2, omega_y^2))

with ``z~ = z - known mean`` (intercept or session means, trend) and measurement error eps
(zero unless the model has it: Schuurman & Hamaker 2019). A Kalman filter over the
state w_t that processes the observed entries one at a time and skips the missing ones gives
``log p(z~_obs | M)`` as a sum of prediction-error terms ``-1/2 (log 2 pi s_k + e_k^2 / s_k)``.
The gains and the variances s_k do not depend on the data, so every innovation is linear in
the data: run on ``z~ - M`` it is ``e_k = e0_k - G_k' M``, where e0_k is the innovation of the
filter run on z~ and the two columns of G_k those of the filter run on a unit mean in x and in
y. Hence, exactly,

    log p(z~_obs | M) = log C - 1/2 [q - 2 g'M + M' L M],
    q = sum_k e0_k^2 / s_k,   g = sum_k G_k e0_k / s_k,   L = sum_k G_k G_k' / s_k,
    log C = -1/2 sum_k log(2 pi s_k),

the same Gaussian factor in M as a completed series gives (:func:`marginal.series_factor`),
so the latent mean and the therapist deviations integrate out as before, and NUTS sees no
parameter per missing cell. :func:`filter_factor` runs vectorised over patients with the
session loop unrolled, entry-wise 2x2 algebra for numpy and pytensor alike; the model uses the
same filter as a pytensor Op with numba kernels and a hand-written gradient
(:mod:`bayes_alliance.kernels.kalman_op`), which compiles in seconds.

:func:`draw_missing` draws the missing cells after sampling (forward filtering, backward
sampling given the drawn latent mean; with measurement error every cell's state is drawn,
observed or not).

References
----------
Schuurman, N. K., & Hamaker, E. L. (2019). Measurement error and person-specific reliability
in multilevel autoregressive modeling. *Psychological Methods*, 24(1), 70-91.
Durbin, J., & Koopman, S. J. (2012). *Time Series Analysis by State Space Methods* (2nd ed.),
sections 4.3 (filter), 4.10 (missing observations), 4.9 (univariate treatment of vector
observations). Carter, C. K., & Kohn, R. (1994). On Gibbs sampling for state space models.
*Biometrika*, 81(3), 541-553 (backward sampling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_alliance.kernels.marginal import MeanFactor

LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class GapCells:
    """The grid as the filter reads it: values (0 where not observed), float masks of the
    observed entries inside each series, and each patient's first cell."""

    x: Any  # (P, S)
    y: Any
    obs_x: Any  # (P, S) 1.0 where x is observed inside the series
    obs_y: Any
    first: Any  # (P, S) 1.0 at the first cell


@dataclass
class Innovations:
    """Per-cell filter output for one variable, each (P, S): the data's innovation ``e0``, the
    unit-mean innovations ``gx``, ``gy``, the prediction variance ``s`` and the mask ``o``."""

    e0: Any
    gx: Any
    gy: Any
    s: Any
    o: Any

    def error(self, mx: Any, my: Any) -> Any:
        """Each entry's prediction error given the latent mean (M_x, M_y)."""
        return self.e0 - mx * self.gx - my * self.gy

    def loglik(self, mx: Any, my: Any) -> Any:
        """Each observed entry's log density given the past observed entries and the latent
        mean (M_x, M_y) (broadcast against (P, 1)); 0 where not observed."""
        e = self.error(mx, my)
        s = np.where(self.o > 0, self.s, 1.0)
        return np.where(self.o > 0, -0.5 * (LOG_2PI + np.log(s) + e * e / s), 0.0)


def no_error(r: Any) -> bool:
    """Whether a measurement-error variance is the constant 0 (then an observed entry fixes
    its state, and the filter keeps the exact formulas of the error-free model)."""
    return isinstance(r, int | float | np.floating) and float(r) == 0.0


def _sigma_at(
    dyn_sigma: tuple[Any, Any, Any], by_session: bool, t: int, by_cell: bool = False
) -> tuple[Any, ...]:
    if by_cell:
        return tuple(e[:, t] for e in dyn_sigma)
    return tuple(e[..., t - 1] for e in dyn_sigma) if by_session else dyn_sigma


def _phi_at(phi: tuple[Any, Any, Any, Any], by_cell: bool, t: int) -> tuple[Any, ...]:
    """The lag entries of the transition into column ``t``."""
    return tuple(e[:, t] for e in phi) if by_cell else phi


def filter_factor(
    cells: GapCells,
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first_cov: tuple[Any, Any, Any],
    n_sessions: int,
    by_session: bool = False,
    xp: Any = np,
    per_cell: bool = False,
    error: tuple[Any, Any] = (0.0, 0.0),
    by_cell: bool = False,
) -> tuple[Any, MeanFactor, dict[str, Innovations] | None]:
    """Each patient's ``log C`` and Gaussian factor in the latent mean from the observed cells.

    Parameters
    ----------
    cells
        The grid (:class:`GapCells`) with the known mean already subtracted from the values.
    phi, sigma, first_cov
        Reduced-form lag entries (a, b, c, d), innovation covariance entries (11, 12, 22) and
        first-cell covariance entries: scalars, per-patient vectors (P,) or, with a leading
        batch axis, (B, P); with ``by_session`` the sigma entries run over the transition
        columns in their last axis.
    n_sessions
        Number of grid columns (the unrolled loop's length).
    xp
        ``numpy`` or ``pytensor.tensor``.
    per_cell
        Also return each cell's :class:`Innovations` (numpy only), keyed ``"x"`` and ``"y"``.
    error
        Measurement-error variances ``(omega_x^2, omega_y^2)``: scalars, shaped like the
        ``phi`` entries, or like the grid (one per cell). An observed entry with error has prediction variance
        ``s = c_kk + omega_k^2`` and updates the state by the gain ``C[:, k] / s``.
    by_cell
        ``phi`` and ``sigma`` entries are (P, S), entry ``[:, t]`` the transition into column
        t (continuous time: one interval per cell, :mod:`bayes_alliance.model.continuous`).
    """
    a, b, c, d = phi
    f11, f12, f22 = first_cov
    rx, ry = error
    exact_x, exact_y = no_error(rx), no_error(ry)
    # An error entry shaped like the grid holds one variance per cell.
    cell_x, cell_y = (np.ndim(e) == np.ndim(cells.x) for e in error)
    zero = 0.0 * cells.x[:, 0]
    # State means of the filter run on the data (index 0) and on unit means in x (1), y (2).
    mx = [zero, zero, zero]
    my = [zero, zero, zero]
    c11, c12, c22 = f11 + zero, f12 + zero, f22 + zero
    acc = {k: 0.0 for k in ("q", "g1", "g2", "l11", "l12", "l22", "log_c")}
    out: dict[str, list[Any]] = {f"{v}_{k}": [] for v in "xy" for k in ("e0", "gx", "gy", "s")}

    def absorb(o: Any, s: Any, e: list[Any], var: str) -> None:
        w = o / s
        acc["q"] = acc["q"] + w * e[0] * e[0]
        acc["g1"] = acc["g1"] + w * e[1] * e[0]
        acc["g2"] = acc["g2"] + w * e[2] * e[0]
        acc["l11"] = acc["l11"] + w * e[1] * e[1]
        acc["l12"] = acc["l12"] + w * e[1] * e[2]
        acc["l22"] = acc["l22"] + w * e[2] * e[2]
        acc["log_c"] = acc["log_c"] - 0.5 * o * (LOG_2PI + xp.log(s))
        if per_cell:
            for k, val in zip(("e0", "gx", "gy", "s"), (*e, s), strict=True):
                out[f"{var}_{k}"].append(val + zero)

    for t in range(n_sessions):
        if t > 0:
            s11, s12, s22 = _sigma_at(sigma, by_session, t, by_cell)
            a, b, c, d = _phi_at(phi, by_cell, t)
            keep = 1.0 - cells.first[:, t]
            new = cells.first[:, t]
            mx, my = (
                [keep * (a * mx[j] + b * my[j]) for j in range(3)],
                [keep * (c * mx[j] + d * my[j]) for j in range(3)],
            )
            p11 = a * a * c11 + 2 * a * b * c12 + b * b * c22 + s11
            p12 = a * c * c11 + (a * d + b * c) * c12 + b * d * c22 + s12
            p22 = c * c * c11 + 2 * c * d * c12 + d * d * c22 + s22
            c11, c12, c22 = new * f11 + keep * p11, new * f12 + keep * p12, new * f22 + keep * p22
        # x entry (if observed): innovation variance c11.
        o = cells.obs_x[:, t]
        e = [cells.x[:, t] - mx[0], 1.0 - mx[1], -mx[2]]
        if exact_x:
            absorb(o, c11, e, "x")
            k2 = c12 / c11
            mx = [mx[j] + o * e[j] for j in range(3)]
            my = [my[j] + o * k2 * e[j] for j in range(3)]
            c11, c12, c22 = (1.0 - o) * c11, (1.0 - o) * c12, c22 - o * c12 * k2
        else:
            s = c11 + (rx[:, t] if cell_x else rx)
            absorb(o, s, e, "x")
            kx, ky = c11 / s, c12 / s
            mx = [mx[j] + o * kx * e[j] for j in range(3)]
            my = [my[j] + o * ky * e[j] for j in range(3)]
            c11, c12, c22 = c11 - o * kx * c11, c12 - o * kx * c12, c22 - o * ky * c12
        # y entry (if observed), given the x entry: innovation variance c22 (+ error).
        o = cells.obs_y[:, t]
        e = [cells.y[:, t] - my[0], -my[1], 1.0 - my[2]]
        if exact_y:
            absorb(o, c22, e, "y")
            k1 = c12 / c22
            mx = [mx[j] + o * k1 * e[j] for j in range(3)]
            my = [my[j] + o * e[j] for j in range(3)]
            c11, c12, c22 = c11 - o * c12 * k1, (1.0 - o) * c12, (1.0 - o) * c22
        else:
            s = c22 + (ry[:, t] if cell_y else ry)
            absorb(o, s, e, "y")
            kx, ky = c12 / s, c22 / s
            mx = [mx[j] + o * kx * e[j] for j in range(3)]
            my = [my[j] + o * ky * e[j] for j in range(3)]
            c11, c12, c22 = c11 - o * kx * c12, c12 - o * ky * c12, c22 - o * ky * c22
    factor = MeanFactor(acc["l11"], acc["l12"], acc["l22"], acc["g1"], acc["g2"], acc["q"])
    if not per_cell:
        return acc["log_c"], factor, None
    cell_out = {
        var: Innovations(
            **{k: np.stack(out[f"{var}_{k}"], axis=-1) for k in ("e0", "gx", "gy", "s")},
            o=np.asarray(getattr(cells, f"obs_{var}")),
        )
        for var in "xy"
    }
    return acc["log_c"], factor, cell_out


def draw_missing(
    cells: GapCells,
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first_cov: tuple[Any, Any, Any],
    by_session: bool,
    inside: np.ndarray,
    rng: np.random.Generator,
    error: tuple[Any, Any] = (0.0, 0.0),
    by_cell: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw every patient's states (w_x, w_y) given the observed cells, numpy, (P, S) each.

    ``cells`` hold the observed values minus the known mean and the drawn latent mean, so
    without measurement error observed entries are the states themselves. Forward filter,
    then backward sampling (Carter & Kohn 1994): ``w_t | w_(t+1), data_(1..t) ~ N(m_t + J
    (w_(t+1) - Phi m_t), C_t - J Phi C_t)``, ``J = C_t Phi' P_(t+1)^-1``. Without error
    observed entries are returned exactly; with ``error`` (the variances ``(omega_x^2,
    omega_y^2)``, scalars or (P,)) an observed entry is the state plus noise, its update has
    variance ``C_kk + omega_k^2``, and every cell's state is a draw. Cells outside the series
    are NaN. ``by_cell``: ``phi`` and ``sigma`` entries per cell (P, S), as in
    :func:`filter_factor`.
    """
    n_p, n_s = np.shape(cells.x)
    f11, f12, f22 = (np.broadcast_to(np.asarray(e, dtype=float), (n_p,)) for e in first_cov)
    m = np.zeros((n_s, n_p, 2))
    cov = np.zeros((n_s, n_p, 2, 2))
    pred = np.zeros((n_s, n_p, 2, 2))  # prediction covariance into cell t
    # lag matrix of the transition into each column, (S, P, 2, 2)
    shape = (n_p, n_s) if by_cell else (n_p,)
    lags = [np.broadcast_to(np.asarray(e, dtype=float), shape) for e in phi]
    lags = [e.T if by_cell else np.broadcast_to(e, (n_s, n_p)) for e in lags]
    phi_t = np.stack([np.stack(lags[:2], -1), np.stack(lags[2:], -1)], -2)
    f_m = np.stack([np.stack([f11, f12], -1), np.stack([f12, f22], -1)], -2)
    start = np.asarray(cells.first, dtype=bool)
    exact = no_error(error[0]) and no_error(error[1])
    noise = [
        np.asarray(e, dtype=float) if np.ndim(e) == 2 else np.broadcast_to(e, (n_s, n_p)).T
        for e in error
    ]  # (P, S): one variance per cell
    for t in range(n_s):
        if t == 0:
            mt, ct = np.zeros((n_p, 2)), f_m.copy()
        else:
            s11, s12, s22 = (
                np.broadcast_to(np.asarray(e, dtype=float), (n_p,))
                for e in _sigma_at(sigma, by_session, t, by_cell)
            )
            q = np.stack([np.stack([s11, s12], -1), np.stack([s12, s22], -1)], -2)
            phi_m = phi_t[t]
            mt = np.einsum("pij,pj->pi", phi_m, m[t - 1])
            ct = phi_m @ cov[t - 1] @ np.swapaxes(phi_m, -1, -2) + q
            new = start[:, t]
            mt[new] = 0.0
            ct[new] = f_m[new]
        pred[t] = ct
        for k, (val, o) in enumerate(((cells.x, cells.obs_x), (cells.y, cells.obs_y))):
            sel = np.asarray(o[:, t]) > 0
            if not sel.any():
                continue
            s = ct[sel, k, k] + noise[k][sel, t]
            gain = ct[sel, :, k] / s[:, None]
            e = val[sel, t] - mt[sel, k]
            mt[sel] = mt[sel] + gain * e[:, None]
            ct[sel] = ct[sel] - gain[:, :, None] * ct[sel, k, :][:, None, :]
        m[t], cov[t] = mt, ct
    w = np.full((n_s, n_p, 2), np.nan)
    last = np.where(inside, np.arange(n_s)[None, :], -1).max(axis=1)
    for t in range(n_s - 1, -1, -1):
        ends = last == t
        going = inside[:, t] & ~ends
        mean = m[t].copy()
        var = cov[t].copy()
        if going.any():
            ph = phi_t[t + 1][going]
            j = var[going] @ np.swapaxes(ph, -1, -2) @ np.linalg.inv(pred[t + 1][going])
            resid = w[t + 1][going] - np.einsum("pij,pj->pi", ph, mean[going])
            mean[going] = mean[going] + np.einsum("pij,pj->pi", j, resid)
            var[going] = var[going] - j @ ph @ var[going]
        sel = inside[:, t]
        w[t][sel] = _mvn2(mean[sel], var[sel], rng)
    wx, wy = w[..., 0].T, w[..., 1].T
    if not exact:
        return wx, wy
    ox, oy = np.asarray(cells.obs_x) > 0, np.asarray(cells.obs_y) > 0
    wx = np.where(ox, cells.x, wx)
    wy = np.where(oy, cells.y, wy)
    return wx, wy


def _mvn2(mean: np.ndarray, cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws from N(mean, cov) for stacks of 2-vectors; degenerate (observed) directions are
    handled by clipping tiny negative variances to zero."""
    c11 = np.maximum(cov[:, 0, 0], 0.0)
    l11 = np.sqrt(c11)
    l21 = np.where(l11 > 1e-12, cov[:, 1, 0] / np.where(l11 > 1e-12, l11, 1.0), 0.0)
    l22 = np.sqrt(np.maximum(cov[:, 1, 1] - l21 * l21, 0.0))
    e = rng.standard_normal(mean.shape)
    return np.stack([mean[:, 0] + l11 * e[:, 0], mean[:, 1] + l21 * e[:, 0] + l22 * e[:, 1]], -1)


__all__ = ["GapCells", "Innovations", "draw_missing", "filter_factor", "no_error"]
