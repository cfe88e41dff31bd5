r"""Continuous time on complete series as sums of products over the distinct intervals: the
exact density of :mod:`bayes_alliance.model.continuous` without the Kalman filter.

Derivation
----------
Patient i's loc-centred scores ``z_t`` (both variables observed at every session of the
series, no measurement error) have the full mean ``m_i = k_i + M_i`` (known part ``k_i``:
intercept and shifts; latent part ``M_i``). With ``w_t = z_t - m_i`` the exact discrete form
of the continuous process (:mod:`bayes_alliance.kernels.ctime`) is::

    w_1 ~ N(0, S),   w_t | w_(t-1) ~ N(Phi(d_t) w_(t-1), Q(d_t)),   d_t = time_t - time_(t-1)

Stack a transition as ``s_t = (z_(t-1), z_t)`` (a 4-vector) and let ``R(d) = [-Phi(d), I]``
(2 x 4). The residual is ``R(d) (s_t - [m; m]) = z_t - Phi(d) z_(t-1) - A(d) m`` with
``A(d) = I - Phi(d)`` (``R(d) [m; m] = A(d) m``), so the transition's log density is::

    -log 2 pi - 1/2 log|Q(d)| - 1/2 (s_t - [m; m])' W(d) (s_t - [m; m]),
    W(d) = R(d)' Q(d)^-1 R(d)

a Gaussian in (z_(t-1), z_t) whose precision depends on the interval alone. Expanding in m::

    (s - [m; m])' W (s - [m; m]) = s' W s - 2 m' A' Q^-1 R s + m' A' Q^-1 A m.

Summed over a patient's transitions, grouped by their distinct intervals d::

    L_i = sum_d n_id A_d' Q_d^-1 A_d + S^-1                  (the precision of m)
    g_i = sum_d A_d' Q_d^-1 (c_id - Phi_d p_id) + S^-1 z_i1   (c_id, p_id: sums of z_t and
                                                              z_(t-1) over those transitions)
    q_i = sum_d tr(W_d C_id) + z_i1' S^-1 z_i1                (C_id: sum of s_t s_t')

so ``p(z_i | m) = C_i exp(-1/2 [q_i - 2 g_i' m + m' L_i m])``,
``log C_i = -(n_i + 1) log 2 pi - 1/2 sum_d n_id log|Q_d| - 1/2 log|S|``. As a factor in
the latent part M (``m = k + M``)::

    q = q_i - 2 g_i' k + k' L_i k,   g = g_i - L_i k,   L = L_i

which is :class:`bayes_alliance.kernels.marginal.MeanFactor`, the form the session-number
sums of products give; the latent means and the therapist parts are integrated out of it as
there (:func:`bayes_alliance.model.likelihood.integrated_likelihood`). Every integral enters
the log density through ``-1/2 q`` (and the therapist's through the sum of its patients'),
so the parts of ``q`` and ``log C`` free of m are needed only summed over all patients:
``sum_i sum_d tr(W_d C_id) = sum_d tr(W_d C_d) = sum_d tr(Q_d^-1 E_d)`` with ``C_d`` the
sums of products over every transition of interval d and
``E_d = sum r r' = Ccc - Phi Ccp' - Ccp Phi' + Phi Cpp Phi'`` (``r = z_t - Phi_d z_(t-1)``),
and ``sum_d N_d log|Q_d|`` (``N_d`` transitions of interval d). They come back as one scalar,
``rest``; what stays per patient (``n_id``, ``c_id``, ``p_id``: (P, D) arrays) enters as
matrix-vector products with the D per-interval coefficients. Per gradient this costs
O(P D) multiply-adds, against the filter's O(P S) 2 x 2 updates with a reverse sweep: cheaper
only while intervals repeat (few distinct D), so :func:`applies` takes this path only where
P D is at most :data:`FILL` times the transitions.

The intervals are data: their distinct values (equal to a relative 1e-9, which merges the
last-bit differences of times converted between units, as
:func:`bayes_alliance.kernels.ctime.distinct_intervals` groups them for both paths) are fixed when
the model is built; ``Phi`` and ``Q`` are computed once per distinct interval.

Numpy or PyTensor (``xp``); no PyMC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import ctime, marginal
from bayes_alliance.spec.model_spec import ModelSpec

KEY = "interval_n"  # the container that marks this path
# Continuous-time data that :func:`applies` to take this path (the model's build and the
# post-hoc draws read it); False: the Kalman filter, which the tests compare.
ENABLED = True
# The most entries of the per-patient (P, D) tables per transition for this path (above it the
# filter's O(transitions) work is cheaper): at M (240 x 15, intervals 1-21 days) the tables
# hold 1.5 per transition and the sums path took 0.11 ms per gradient against the filter's 0.50.
FILL = 8
_PRODUCTS = ("cc_xx", "cc_xy", "cc_yy", "pp_xx", "pp_xy", "pp_yy")
_CROSS = ("cp_xx", "cp_xy", "cp_yx", "cp_yy")


def complete(data: SessionData) -> bool:
    """True where every cell of every patient's series has both scores (a dropout, a
    shorter series, is complete)."""
    return not bool((data.in_series & ~(data.observed_x & data.observed_y)).any())


def applies(data: SessionData, spec: ModelSpec) -> bool:
    """Whether continuous time takes this path: complete series, the drift shared by all
    patients (no random cross effects, no moderators), no measurement error, and few enough
    distinct intervals that the per-patient (P, D) tables hold at most :data:`FILL` entries
    per transition; otherwise the whole data set takes the filter (one lag matrix per cell).

    The last condition keeps the path from growing as P x D where intervals hardly repeat
    (clock times, a numeric time column with fractions): weekly sessions +- 0.1 day gave
    D = 4,750 distinct intervals at P = 250 and (P, D) tables of 48 MB, against 4,750
    transitions for the filter.
    """
    if not (
        ENABLED
        and spec.time_model == "continuous"
        and not (spec.measurement_error or spec.random_slopes or spec.moderators)
        and complete(data)
        and data.times is not None
    ):
        return False
    inside = data.in_series
    trans = inside[:, 1:] & inside[:, :-1]
    n_trans = int(trans.sum())
    dt = (data.times[:, 1:] - data.times[:, :-1])[trans]
    n_int = len(ctime.distinct_intervals(dt)[0])
    return data.n_patients * n_int <= FILL * max(n_trans, 1)


@dataclass(frozen=True)
class IntervalSums:
    """The data of :func:`interval_factor`, by their ``pm.Data`` names.

    ``interval_values`` (D,): the distinct intervals of the transitions (cells after a
    patient's first); per patient and interval (P, D): ``interval_n`` the transitions,
    ``interval_c_x`` / ``_c_y`` the sums of z_t, ``interval_p_x`` / ``_p_y`` of z_(t-1);
    per interval over all patients (D,): ``interval_count`` and the sums of products
    ``interval_cc_*`` (z_t z_t'), ``interval_pp_*`` (z_(t-1) z_(t-1)'), ``interval_cp_<now>
    <before>``; per patient (P,): ``interval_first_x`` / ``_y`` (the first cell) and
    ``interval_transitions``. Scores are centred at ``loc``.
    """

    arrays: dict[str, np.ndarray]

    @classmethod
    def of(cls, data: SessionData, loc: tuple[float, float]) -> IntervalSums:
        if data.times is None:
            raise ValueError("interval sums need each session's time")
        if not complete(data):
            raise ValueError("interval sums need complete series (both scores at every session)")
        inside = data.in_series
        x = np.where(inside, data.x - loc[0], 0.0)
        y = np.where(inside, data.y - loc[1], 0.0)
        trans = inside[:, 1:] & inside[:, :-1]
        rows, cols = np.nonzero(trans)  # transition into column cols + 1
        dt = data.times[rows, cols + 1] - data.times[rows, cols]
        values, which = ctime.distinct_intervals(dt)
        n_pat, n_int = data.n_patients, len(values)
        now = {"x": x[rows, cols + 1], "y": y[rows, cols + 1]}
        before = {"x": x[rows, cols], "y": y[rows, cols]}

        def by_patient(w: np.ndarray) -> np.ndarray:
            out = np.zeros((n_pat, n_int))
            np.add.at(out, (rows, which), w)
            return out

        def by_interval(w: np.ndarray) -> np.ndarray:
            return np.bincount(which, weights=w, minlength=n_int).astype(float)

        arr = {
            "interval_values": values.astype(float),
            KEY: by_patient(np.ones(len(rows))),
            "interval_c_x": by_patient(now["x"]),
            "interval_c_y": by_patient(now["y"]),
            "interval_p_x": by_patient(before["x"]),
            "interval_p_y": by_patient(before["y"]),
            "interval_count": by_interval(np.ones(len(rows))),
        }
        for name in _PRODUCTS:
            src = now if name[0] == "c" else before
            arr[f"interval_{name}"] = by_interval(src[name[3]] * src[name[4]])
        for name in _CROSS:
            arr[f"interval_{name}"] = by_interval(now[name[3]] * before[name[4]])
        first = np.arange(n_pat), data.first
        arr["interval_first_x"] = x[first]
        arr["interval_first_y"] = y[first]
        arr["interval_transitions"] = trans.sum(axis=1).astype(float)
        return cls(arr)

    def containers(self) -> dict[str, np.ndarray]:
        return dict(self.arrays)


def interval_quadratic(
    cells: dict[str, Any], phi: tuple[Any, Any, Any, Any], inv: tuple[Any, Any, Any]
) -> Any:
    """``tr(Q_d^-1 E_d)`` per interval (D,): the residuals' quadratic form summed over every
    transition of interval d, from the sums of products (``inv``: entries of ``Q_d^-1``)."""
    a, b, c, d = phi
    s = {k: cells[f"interval_{k}"] for k in (*_PRODUCTS, *_CROSS)}
    pp = s["pp_xx"], s["pp_xy"], s["pp_yy"]
    e11 = (
        s["cc_xx"]
        - 2 * (a * s["cp_xx"] + b * s["cp_xy"])
        + (a * a * pp[0] + 2 * a * b * pp[1] + b * b * pp[2])
    )
    e22 = (
        s["cc_yy"]
        - 2 * (c * s["cp_yx"] + d * s["cp_yy"])
        + (c * c * pp[0] + 2 * c * d * pp[1] + d * d * pp[2])
    )
    e12 = (
        s["cc_xy"]
        - (c * s["cp_xx"] + d * s["cp_xy"])
        - (a * s["cp_yx"] + b * s["cp_yy"])
        + (a * c * pp[0] + (a * d + b * c) * pp[1] + b * d * pp[2])
    )
    return inv[0] * e11 + 2 * inv[1] * e12 + inv[2] * e22


def interval_factor(
    cells: dict[str, Any],
    known: tuple[Any, Any],
    phi: tuple[Any, Any, Any, Any],
    sigma: tuple[Any, Any, Any],
    first: tuple[Any, Any, Any],
    xp: Any = np,
) -> tuple[Any, marginal.MeanFactor, Any]:
    """Each patient's ``log C`` (P,) and Gaussian factor in the latent mean, and the scalar
    ``rest`` that the patients' terms free of the mean add up to (module docstring).

    Parameters
    ----------
    cells
        :class:`IntervalSums` containers (arrays or ``pm.Data``).
    known
        The known mean minus ``loc`` per patient (P,) or a scalar, for each variable.
    phi, sigma
        ``Phi(d)`` and ``Q(d)`` entries per distinct interval (D,), in the order of
        ``interval_values``.
    first
        The stationary covariance S (the first cell's), entries (11, 12, 22).
    xp
        ``numpy`` or ``pytensor.tensor``.

    Returns
    -------
    log_c, factor, rest
        The log density of the series is ``sum_i [log_c_i + log int factor_i dN(M)] + rest``.
    """
    a, b, c, d = phi
    det, i11, i12, i22 = marginal.sym_inverse(*sigma)
    rest = -0.5 * (
        interval_quadratic(cells, phi, (i11, i12, i22)).sum()
        + (cells["interval_count"] * xp.log(det)).sum()
    )
    # G = A' Q^-1 with A = I - Phi; the precision's terms A' Q^-1 A = G A per interval.
    a11, a12, a21, a22 = 1 - a, -b, -c, 1 - d
    g11, g12 = a11 * i11 + a21 * i12, a11 * i12 + a21 * i22
    g21, g22 = a12 * i11 + a22 * i12, a12 * i12 + a22 * i22
    m11, m12, m22 = g11 * a11 + g12 * a21, g11 * a12 + g12 * a22, g21 * a12 + g22 * a22
    n = cells[KEY]
    cx, cy, px, py = (cells[f"interval_{k}"] for k in ("c_x", "c_y", "p_x", "p_y"))
    # g_i = sum_d G_d (c_id - Phi_d p_id): one matrix-vector product per coefficient.
    h1 = xp.dot(cx, g11) + xp.dot(cy, g12) - xp.dot(px, g11 * a + g12 * c)
    h1 = h1 - xp.dot(py, g11 * b + g12 * d)
    h2 = xp.dot(cx, g21) + xp.dot(cy, g22) - xp.dot(px, g21 * a + g22 * c)
    h2 = h2 - xp.dot(py, g21 * b + g22 * d)
    det_f, f11, f12, f22 = marginal.sym_inverse(*first)
    z1x, z1y = cells["interval_first_x"], cells["interval_first_y"]
    h1 = h1 + f11 * z1x + f12 * z1y
    h2 = h2 + f12 * z1x + f22 * z1y
    l11 = xp.dot(n, m11) + f11
    l12 = xp.dot(n, m12) + f12
    l22 = xp.dot(n, m22) + f22
    q = f11 * z1x * z1x + 2 * f12 * z1x * z1y + f22 * z1y * z1y
    kx, ky = known
    lk1, lk2 = l11 * kx + l12 * ky, l12 * kx + l22 * ky
    q = q - 2 * (h1 * kx + h2 * ky) + kx * lk1 + ky * lk2
    log_c = -(cells["interval_transitions"] + 1) * marginal.LOG_2PI - 0.5 * xp.log(det_f)
    return log_c, marginal.MeanFactor(l11, l12, l22, h1 - lk1, h2 - lk2, q), rest


__all__ = [
    "ENABLED",
    "KEY",
    "IntervalSums",
    "applies",
    "complete",
    "interval_factor",
    "interval_quadratic",
]
