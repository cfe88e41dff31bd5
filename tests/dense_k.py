r"""Dense reference for the k-series multilevel VAR(1) (issue 26): the joint Gaussian of every
observed cell of every patient, written as plain loading-matrix algebra.

This module is the independent truth for the package's Kalman-filter implementation, so it uses
neither a filter nor anything from ``bayes_alliance``: every latent block is listed explicitly, its
prior covariance is written down, and each observation is a row of a loading matrix.

Model (integrated form). Patients :math:`i = 0..P-1` with therapist :math:`j(i)` (or none: two
levels), grid columns :math:`t = 0..S-1`, series :math:`r = 0..k-1`; patient :math:`i` occupies the
columns ``first[i]..last[i]`` (inclusive), inside which any cell may be unobserved:

.. math::

    z_{itr} = \mu_r + u_{j(i)r} + v_{ir} + [r = 0](\beta + \delta_i)\,\tau_{it} + w_{itr}
              + \varepsilon_{itr}, \qquad \varepsilon_{itr} \sim N(0, \omega_r^2),

    w_{i,\mathrm{first}_i} \sim N(0, F), \qquad w_{it} = \Phi_i w_{i,t-1} + e_{it},\quad
    e_{it} \sim N(0, \Sigma_i),

    (v_i, \delta_i) \sim N(0, \Sigma_P)\ (\text{size } k + 1\ \text{with a trend, else } v_i
    \sim N(0, \Sigma_P)\ \text{size } k), \qquad u_j \sim N(0, \Sigma_T),

and the optional end-of-treatment outcome

.. math::

    O_i = g_0 + u^O_{j(i)} + g_T u_{j(i)0} + g_P v_{i0} + g_S \delta_i + \eta_i, \quad
    \eta_i \sim N(0, s_O^2),\ u^O_j \sim N(0, \tau_O^2)

(two levels: no :math:`u^O`, no :math:`g_T` term; no trend: no :math:`g_S` term).

An optional patient-level baseline :math:`z_i` (``Baseline``: values ``z`` (P, q), shifts
``gamma`` (k, q)) moves every mean by a known amount: :math:`\mu_r` becomes
:math:`\mu_r + \gamma_r' z_i` in every cell of patient i, and the end outcome, which depends on
the whole patient part :math:`\gamma_0' z_i + v_{i0}` of series 0 and directly on
:math:`z_i` (``EndOutcome.cz``), gains :math:`c_z' z_i + g_P \gamma_0' z_i`. A therapist-level
baseline (``Baseline(level="therapist")``: values ``z`` (T, q), one row per therapist) moves
the means of therapist j's patients by :math:`\gamma_r' z_j` and its end outcomes, which
depend on the therapist part :math:`\gamma_0' z_j + u_{j0}`, by :math:`c_z' z_j + g_T
\gamma_0' z_j`.

Stacking all latents in :math:`\lambda \sim N(0, C)` (C block diagonal: one
:math:`\Sigma_P` per patient, one :math:`\Sigma_T` and one :math:`\tau_O^2` per therapist, and per
patient the covariance of the states :math:`w_{i,\mathrm{first}..\mathrm{last}}` from the VAR
recursion), the observed vector is :math:`y = m + A\lambda + \epsilon` with loading matrix
:math:`A`, so :math:`y \sim N(m, A C A' + D)` with :math:`D` the diagonal of the
:math:`\omega_r^2` and :math:`s_O^2`. The state covariance follows from
:math:`\mathrm{Var}(w_t) = \Phi \mathrm{Var}(w_{t-1}) \Phi' + \Sigma` and
:math:`\mathrm{Cov}(w_t, w_s) = \Phi^{t-s}\mathrm{Var}(w_s)` for :math:`t \ge s`
(Hamilton 1994, *Time Series Analysis*, ch. 10). Posterior moments of the traits follow from the
Gaussian conditioning formula :math:`E(\theta\mid y) = C_{\theta y} V^{-1}(y - m)`,
:math:`\mathrm{Var}(\theta\mid y) = C_{\theta\theta} - C_{\theta y} V^{-1} C_{y\theta}`
(Anderson 2003, *An Introduction to Multivariate Statistical Analysis*, thm. 2.5.1).

Ordering of the observed vector: the observed cells in C order of ``(patient, column, series)``
(that is, ``values[observed]``), then the observed end outcomes in patient order. ``index`` is an
integer array (n, 3) of ``(patient, column, series)``; an end row is ``(patient, -1, -1)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import linalg, stats

__all__ = [
    "Baseline",
    "DensePosterior",
    "EndOutcome",
    "SimulatedK",
    "dense_joint",
    "dense_logp",
    "dense_posterior",
    "simulate_k",
    "stack_observed",
]


@dataclass(frozen=True)
class EndOutcome:
    """Gaussian end-of-treatment outcome: ``O`` (P,) with NaN where not observed, and its
    coefficients. ``gT`` and ``tauO`` are used only with therapists, ``gS`` only with a trend."""

    O: np.ndarray
    g0: float
    gP: float
    sdO: float
    gT: float = 0.0
    gS: float = 0.0
    tauO: float = 0.0
    cz: Any = None  # (q,) direct effect of a baseline (with ``Baseline``)


@dataclass(frozen=True)
class Baseline:
    """A baseline: values ``z`` (P, q), or (T, q) per therapist at ``level="therapist"``, and
    each series' shift ``gamma`` (k, q)."""

    z: np.ndarray
    gamma: np.ndarray
    level: str = "patient"


@dataclass(frozen=True)
class DensePosterior:
    """Exact Gaussian posterior of the traits given all observed data.

    ``patient_mean`` (P, m), ``patient_cov`` (P, m, m) with m = k (+1 with a trend: delta last);
    ``therapist_mean`` (T, k), ``therapist_cov`` (T, k, k) (None in two levels);
    ``end_mean`` (T,), ``end_var`` (T,) for uO (None without an end outcome or therapists);
    ``joint_mean``/``joint_cov`` over all of them stacked as [patients' (v, delta), therapists' u,
    therapists' uO] (row-major within each block) for cross-covariances.
    """

    patient_mean: np.ndarray
    patient_cov: np.ndarray
    therapist_mean: np.ndarray | None
    therapist_cov: np.ndarray | None
    end_mean: np.ndarray | None
    end_var: np.ndarray | None
    joint_mean: np.ndarray
    joint_cov: np.ndarray


@dataclass(frozen=True)
class SimulatedK:
    """``n`` data sets from the generative model: ``values`` (n, P, S, k), NaN outside each
    patient's columns; ``end`` (n, P) or None; ``traits`` (n, P, m) = (v, delta);
    ``therapist`` (n, T, k) = u or None; ``end_therapist`` (n, T) = uO or None."""

    values: np.ndarray
    end: np.ndarray | None
    traits: np.ndarray
    therapist: np.ndarray | None
    end_therapist: np.ndarray | None

    def latents(self) -> np.ndarray:
        """(n, q) traits stacked in the order of ``DensePosterior.joint_mean``."""
        n = self.traits.shape[0]
        parts = [self.traits.reshape(n, -1)]
        if self.therapist is not None:
            parts.append(self.therapist.reshape(n, -1))
        if self.end_therapist is not None:
            parts.append(self.end_therapist)
        return np.concatenate(parts, axis=1)


@dataclass(frozen=True)
class _Design:
    """Checked, broadcast inputs."""

    first: np.ndarray
    last: np.ndarray
    time: np.ndarray
    mu: np.ndarray
    phi: np.ndarray
    sigma: np.ndarray
    first_cov: np.ndarray
    sigma_p: np.ndarray
    omega: np.ndarray
    therapist: np.ndarray | None
    sigma_t: np.ndarray | None
    trend: float
    end: EndOutcome | None
    n_patients: int
    n_columns: int
    k: int
    has_trend: bool
    n_therapists: int
    baseline: Baseline | None = None


def _per_patient(a: Any, name: str, p: int, k: int) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.shape == (k, k):
        arr = np.broadcast_to(arr, (p, k, k))
    if arr.shape != (p, k, k):
        raise ValueError(f"{name} must have shape ({k}, {k}) or ({p}, {k}, {k}), got {arr.shape}")
    return arr


def _end_outcome(end: Any, p: int) -> EndOutcome | None:
    if end is None:
        return None
    if isinstance(end, Mapping):
        end = EndOutcome(**dict(end))
    if not isinstance(end, EndOutcome):
        raise TypeError(f"end must be None, a mapping or an EndOutcome, got {type(end).__name__}")
    o = np.asarray(end.O, dtype=float)
    if o.shape != (p,):
        raise ValueError(f"end O must have shape ({p},), got {o.shape}")
    if end.sdO < 0 or end.tauO < 0:
        raise ValueError("end sdO and tauO must be >= 0")
    return EndOutcome(o, end.g0, end.gP, end.sdO, end.gT, end.gS, end.tauO, end.cz)


def _design(
    first, last, time, mu, phi, sigma, first_cov, sigma_p, omega, therapist, sigma_t, trend, end
) -> _Design:
    first = np.asarray(first, dtype=int)
    last = np.asarray(last, dtype=int)
    time = np.asarray(time, dtype=float)
    if time.ndim != 2:
        raise ValueError(f"time must be (P, S), got shape {time.shape}")
    p, s = time.shape
    if first.shape != (p,) or last.shape != (p,):
        raise ValueError(f"first and last must have shape ({p},)")
    for i in range(p):
        if not 0 <= first[i] <= last[i] < s:
            raise ValueError(
                f"patient {i}: need 0 <= first <= last < {s}, got first={first[i]}, last={last[i]}"
            )
    mu = np.asarray(mu, dtype=float).reshape(-1)
    k = mu.size
    omega = np.asarray(omega, dtype=float).reshape(-1)
    if omega.shape != (k,) or np.any(omega < 0):
        raise ValueError(f"omega must be {k} standard deviations >= 0, got {omega}")
    phi = _per_patient(phi, "phi", p, k)
    sigma = _per_patient(sigma, "sigma", p, k)
    first_cov = _per_patient(first_cov, "first_cov", p, k)
    sigma_p = np.asarray(sigma_p, dtype=float)
    if sigma_p.shape not in ((k, k), (k + 1, k + 1)):
        raise ValueError(
            f"sigma_p must be ({k}, {k}) (no trend) or ({k + 1}, {k + 1}) (trend), got {sigma_p.shape}"
        )
    has_trend = sigma_p.shape[0] == k + 1
    n_therapists = 0
    if therapist is None:
        if sigma_t is not None:
            raise ValueError("sigma_t given without therapist codes")
    else:
        therapist = np.asarray(therapist)
        if therapist.shape != (p,) or not np.issubdtype(therapist.dtype, np.integer):
            raise ValueError(f"therapist must be ({p},) integer codes, got {therapist.dtype}")
        if np.any(therapist < 0):
            bad = int(np.flatnonzero(therapist < 0)[0])
            raise ValueError(f"patient {bad}: therapist code {therapist[bad]} < 0")
        if sigma_t is None:
            raise ValueError("therapist codes given without sigma_t")
        sigma_t = np.asarray(sigma_t, dtype=float)
        if sigma_t.shape != (k, k):
            raise ValueError(f"sigma_t must be ({k}, {k}), got {sigma_t.shape}")
        n_therapists = int(therapist.max()) + 1
    return _Design(
        first, last, time, mu, phi, sigma, first_cov, sigma_p, omega, therapist, sigma_t,
        float(trend), _end_outcome(end, p), p, s, k, has_trend, n_therapists,
    )  # fmt: skip


def _with_baseline(d: _Design, baseline: Baseline | None) -> _Design:
    if baseline is None:
        return d
    z, gamma = np.asarray(baseline.z, float), np.asarray(baseline.gamma, float)
    units = d.n_patients
    if baseline.level == "therapist":
        if d.therapist is None:
            raise ValueError("a therapist-level baseline needs therapists")
        units = int(np.max(d.therapist)) + 1
    if z.ndim != 2 or z.shape[0] != units or gamma.shape != (d.k, z.shape[1]):
        raise ValueError(f"baseline z must be ({units}, q) and gamma ({d.k}, q)")
    if d.end is not None and d.end.cz is not None and np.shape(d.end.cz) != (z.shape[1],):
        raise ValueError(f"end cz must have shape ({z.shape[1]},)")
    return replace(d, baseline=Baseline(z, gamma, baseline.level))


def _check_observed(values: Any, observed: Any, d: _Design) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    shape = (d.n_patients, d.n_columns, d.k)
    if values.shape != shape or observed.shape != shape:
        raise ValueError(f"values and observed must have shape {shape}")
    for i, t, r in zip(*np.nonzero(observed), strict=True):
        if not d.first[i] <= t <= d.last[i]:
            raise ValueError(
                f"patient {i}, column {t}, series {r}: observed outside the patient's columns "
                f"{d.first[i]}..{d.last[i]}"
            )
        if not np.isfinite(values[i, t, r]):
            raise ValueError(f"patient {i}, column {t}, series {r}: observed but not finite")
    return values, observed


def var_block(phi: np.ndarray, sigma: np.ndarray, first_cov: np.ndarray, n: int) -> np.ndarray:
    """Covariance (n k, n k) of (w_0, ..., w_(n-1)) stacked per column, for w_0 ~ N(0, F) and
    w_t = Phi w_(t-1) + e_t, e_t ~ N(0, Sigma): Cov(w_t, w_s) = Phi^(t-s) Var(w_s), t >= s."""
    k = phi.shape[0]
    var = [first_cov]
    for _ in range(1, n):
        var.append(phi @ var[-1] @ phi.T + sigma)
    cov = np.zeros((n * k, n * k))
    for t in range(n):
        for s in range(t + 1):
            block = np.linalg.matrix_power(phi, t - s) @ var[s]
            cov[t * k : (t + 1) * k, s * k : (s + 1) * k] = block
            cov[s * k : (s + 1) * k, t * k : (t + 1) * k] = block.T
    return cov


@dataclass(frozen=True)
class _Linear:
    """y = mean + loading @ latent + noise, latent ~ N(0, prior), noise ~ N(0, diag(noise))."""

    mean: np.ndarray
    loading: np.ndarray
    prior: np.ndarray
    noise: np.ndarray
    index: np.ndarray
    n_traits: int  # the first n_traits latents are (v, delta), u, uO; the rest are states w


def _linear(d: _Design, observed: np.ndarray) -> _Linear:
    p, k = d.n_patients, d.k
    m = k + int(d.has_trend)
    n_t = d.n_therapists
    end_rows = np.zeros(0, dtype=int) if d.end is None else np.flatnonzero(np.isfinite(d.end.O))
    has_uo = d.end is not None and n_t > 0
    # Latent layout: traits, u, uO, then each patient's states over first..last.
    off_u = p * m
    off_uo = off_u + n_t * k
    off_w = np.zeros(p + 1, dtype=int)
    off_w[0] = off_uo + (n_t if has_uo else 0)
    for i in range(p):
        off_w[i + 1] = off_w[i] + (d.last[i] - d.first[i] + 1) * k
    n_traits = int(off_w[0])
    n_latent = int(off_w[p])

    prior = np.zeros((n_latent, n_latent))
    for i in range(p):
        prior[i * m : (i + 1) * m, i * m : (i + 1) * m] = d.sigma_p
        n = d.last[i] - d.first[i] + 1
        prior[off_w[i] : off_w[i + 1], off_w[i] : off_w[i + 1]] = var_block(
            d.phi[i], d.sigma[i], d.first_cov[i], n
        )
    for j in range(n_t):
        assert d.sigma_t is not None
        prior[off_u + j * k : off_u + (j + 1) * k, off_u + j * k : off_u + (j + 1) * k] = d.sigma_t
        if has_uo:
            assert d.end is not None
            prior[off_uo + j, off_uo + j] = d.end.tauO**2

    cells = np.argwhere(observed)
    n_obs = len(cells) + len(end_rows)
    mean = np.zeros(n_obs)
    loading = np.zeros((n_obs, n_latent))
    noise = np.zeros(n_obs)
    index = np.full((n_obs, 3), -1, dtype=int)
    z = gamma = None
    g_base = 0.0  # the end outcome's effect of the part of series 0 the baseline moves
    if d.baseline is not None:
        z, gamma = np.asarray(d.baseline.z, float), np.asarray(d.baseline.gamma, float)
        if d.baseline.level == "therapist":
            assert d.therapist is not None
            z = z[np.asarray(d.therapist)]  # each patient's therapist's row
            g_base = d.end.gT if d.end is not None else 0.0
        else:
            g_base = d.end.gP if d.end is not None else 0.0
    for row, (i, t, r) in enumerate(cells):
        index[row] = (i, t, r)
        mean[row] = d.mu[r]
        if z is not None and gamma is not None:
            mean[row] += sum(gamma[r, c] * z[i, c] for c in range(z.shape[1]))
        loading[row, i * m + r] = 1.0  # v[i, r]
        if r == 0:
            mean[row] += d.trend * d.time[i, t]
            if d.has_trend:
                loading[row, i * m + k] = d.time[i, t]  # delta[i]
        if d.therapist is not None:
            loading[row, off_u + d.therapist[i] * k + r] = 1.0
        loading[row, off_w[i] + (t - d.first[i]) * k + r] = 1.0
        noise[row] = d.omega[r] ** 2
    for row, pat in enumerate(end_rows.tolist(), start=len(cells)):
        assert d.end is not None
        index[row, 0] = pat
        mean[row] = d.end.g0
        if z is not None and gamma is not None:
            cz = np.zeros(z.shape[1]) if d.end.cz is None else np.asarray(d.end.cz, float)
            for c in range(z.shape[1]):
                mean[row] += (cz[c] + g_base * gamma[0, c]) * z[pat, c]
        loading[row, pat * m] = d.end.gP
        if d.has_trend:
            loading[row, pat * m + k] = d.end.gS
        if d.therapist is not None:
            j = d.therapist[pat]
            loading[row, off_u + j * k] = d.end.gT
            loading[row, off_uo + j] = 1.0
        noise[row] = d.end.sdO**2
    return _Linear(mean, loading, prior, noise, index, n_traits)


def stack_observed(
    values: np.ndarray,
    observed: np.ndarray,
    end_values: np.ndarray | None = None,
    end_observed: np.ndarray | None = None,
) -> np.ndarray:
    """The observed vector in ``dense_joint``'s order; ``values`` (..., P, S, k) and
    ``end_values`` (..., P) may carry leading batch axes (one row per simulated data set).
    ``end_observed`` defaults to the finite entries of ``end_values``."""
    values = np.asarray(values, dtype=float)
    lead = values.shape[:-3]
    cells = values[..., np.asarray(observed, dtype=bool)]
    if end_values is None:
        return cells
    end_values = np.asarray(end_values, dtype=float)
    mask = np.isfinite(end_values) if end_observed is None else np.asarray(end_observed, bool)
    if mask.ndim > 1:
        if not np.all(mask == mask.reshape(-1, mask.shape[-1])[0]):
            raise ValueError("end_observed must be the same for every data set")
        mask = mask.reshape(-1, mask.shape[-1])[0]
    ends = end_values[..., mask].reshape(*lead, -1)
    return np.concatenate([cells, ends], axis=-1)


def dense_joint(
    values, observed, first, last, time, mu, phi, sigma, first_cov, sigma_p, omega,
    therapist=None, sigma_t=None, trend=0.0, end=None, baseline=None, coef_mean=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Mean (n,), covariance (n, n) and index (n, 3) of all observed cells and end outcomes.

    Parameters
    ----------
    values : (P, S, k) float, anything where not observed (only checked to be finite where
        observed; the moments do not depend on it).
    observed : (P, S, k) bool, True only inside ``first[i]..last[i]``.
    first, last : (P,) int, each patient's first and last grid column (inclusive).
    time : (P, S) float, the trend's time for each cell (used for series 0 only).
    mu : (k,) means; phi, sigma : (P, k, k) or (k, k) lag and innovation covariance;
    first_cov : (k, k) or (P, k, k) covariance F of the first state.
    sigma_p : (k, k) without a trend, (k + 1, k + 1) with one (delta last).
    omega : (k,) measurement standard deviations (may be 0).
    therapist : (P,) int codes 0..T-1 or None (two levels); sigma_t : (k, k) with therapists.
    trend : the fixed trend of series 0.
    end : None, an ``EndOutcome`` or a mapping with keys O, g0, gP, gT, gS, sdO, tauO (, cz).
    baseline : None or a ``Baseline`` (z (P, q), gamma (k, q)): known shifts of the means.
    coef_mean : None or (P, k [+ 1]) each patient's coefficients' mean: (v_i, delta_i) ~
        N(coef_mean_i, sigma_p) instead of N(0, sigma_p); it moves every cell and end outcome
        through the same loadings as the coefficients themselves.

    Returns
    -------
    mean, cov, index : index rows are (patient, column, series), end rows (patient, -1, -1).
    """
    d = _with_baseline(_design(
        first, last, time, mu, phi, sigma, first_cov, sigma_p, omega, therapist, sigma_t, trend, end
    ), baseline)  # fmt: skip
    _, obs = _check_observed(values, observed, d)
    lin = _linear(d, obs)
    cov = lin.loading @ lin.prior @ lin.loading.T + np.diag(lin.noise)
    mean = lin.mean
    if coef_mean is not None:
        m = np.asarray(coef_mean, float).reshape(-1)  # the first P (k [+ 1]) latents, in order
        mean = mean + lin.loading[:, : m.size] @ m
    return mean, 0.5 * (cov + cov.T), lin.index


def dense_logp(
    values, observed, first, last, time, mu, phi, sigma, first_cov, sigma_p, omega,
    therapist=None, sigma_t=None, trend=0.0, end=None, baseline=None, coef_mean=None,
) -> float:  # fmt: skip
    """log N(y; mean, cov) of the observed vector y (``dense_joint``'s order), by scipy."""
    mean, cov, _ = dense_joint(
        values, observed, first, last, time, mu, phi, sigma, first_cov, sigma_p, omega,
        therapist, sigma_t, trend, end, baseline, coef_mean,
    )  # fmt: skip
    d_end = _end_outcome(end, np.asarray(time).shape[0])
    y = stack_observed(values, observed, None if d_end is None else d_end.O)
    return float(stats.multivariate_normal(mean, cov).logpdf(y))


def dense_posterior(
    values, observed, first, last, time, mu, phi, sigma, first_cov, sigma_p, omega,
    therapist=None, sigma_t=None, trend=0.0, end=None, baseline=None,
) -> DensePosterior:  # fmt: skip
    """Exact conditional mean and covariance of (v_i, delta_i), u_j and uO_j given all observed
    data: E = C_ty V^-1 (y - m), Var = C_tt - C_ty V^-1 C_yt (arguments as ``dense_joint``)."""
    d = _with_baseline(_design(
        first, last, time, mu, phi, sigma, first_cov, sigma_p, omega, therapist, sigma_t, trend, end
    ), baseline)  # fmt: skip
    vals, obs = _check_observed(values, observed, d)
    lin = _linear(d, obs)
    y = stack_observed(vals, obs, None if d.end is None else d.end.O)
    cov_y = lin.loading @ lin.prior @ lin.loading.T + np.diag(lin.noise)
    q = lin.n_traits
    c_ty = lin.prior[:q] @ lin.loading.T
    if len(y):
        factor = linalg.cho_factor(0.5 * (cov_y + cov_y.T))
        mean = c_ty @ linalg.cho_solve(factor, y - lin.mean)
        cov = lin.prior[:q, :q] - c_ty @ linalg.cho_solve(factor, c_ty.T)
    else:
        mean, cov = np.zeros(q), lin.prior[:q, :q].copy()
    cov = 0.5 * (cov + cov.T)

    p, k, n_t = d.n_patients, d.k, d.n_therapists
    m = k + int(d.has_trend)
    pm = mean[: p * m].reshape(p, m)
    pc = np.stack([cov[i * m : (i + 1) * m, i * m : (i + 1) * m] for i in range(p)])
    tm = tc = em = ev = None
    if n_t:
        o = p * m
        tm = mean[o : o + n_t * k].reshape(n_t, k)
        tc = np.stack(
            [cov[o + j * k : o + (j + 1) * k, o + j * k : o + (j + 1) * k] for j in range(n_t)]
        )
        if d.end is not None:
            o += n_t * k
            em = mean[o : o + n_t]
            ev = np.diag(cov)[o : o + n_t].copy()
    return DensePosterior(pm, pc, tm, tc, em, ev, mean, cov)


def _mvn(rng: np.random.Generator, cov: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Zero-mean normal draws (*size, dim) from a possibly singular covariance."""
    return rng.multivariate_normal(np.zeros(cov.shape[0]), cov, size=size, method="eigh")


def simulate_k(
    rng: np.random.Generator, n_sets: int, first, last, time, mu, phi, sigma, first_cov,
    sigma_p, omega, therapist=None, sigma_t=None, trend=0.0, end=None,
) -> SimulatedK:  # fmt: skip
    """Draw ``n_sets`` independent data sets from the generative model (the recursion itself,
    not the integrated covariance). ``end`` is used for its coefficients only: every patient's
    outcome is drawn; mask it with ``stack_observed``."""
    d = _design(
        first, last, time, mu, phi, sigma, first_cov, sigma_p, omega, therapist, sigma_t, trend, end
    )
    n, p, s, k, n_t = n_sets, d.n_patients, d.n_columns, d.k, d.n_therapists
    traits = _mvn(rng, d.sigma_p, (n, p))
    v = traits[..., :k]
    delta = traits[..., k] if d.has_trend else np.zeros((n, p))
    u = uo = None
    level = np.broadcast_to(d.mu, (n, p, k)) + v
    if n_t:
        assert d.sigma_t is not None and d.therapist is not None
        u = _mvn(rng, d.sigma_t, (n, n_t))
        level = level + u[:, d.therapist]
    values = np.full((n, p, s, k), np.nan)
    for i in range(p):
        w = _mvn(rng, d.first_cov[i], (n,))
        for t in range(d.first[i], d.last[i] + 1):
            if t > d.first[i]:
                w = w @ d.phi[i].T + _mvn(rng, d.sigma[i], (n,))
            z = level[:, i] + w + rng.standard_normal((n, k)) * d.omega
            z[:, 0] += (d.trend + delta[:, i]) * d.time[i, t]
            values[:, i, t] = z
    end_values = None
    if d.end is not None:
        e = d.end
        end_values = e.g0 + e.gP * v[..., 0] + e.sdO * rng.standard_normal((n, p))
        if d.has_trend:
            end_values += e.gS * delta
        if n_t:
            assert u is not None and d.therapist is not None
            uo = e.tauO * rng.standard_normal((n, n_t))
            end_values += uo[:, d.therapist] + e.gT * u[:, d.therapist, 0]
    return SimulatedK(values, end_values, traits, u, uo)


def gaussian_condition(
    mean: np.ndarray, cov: np.ndarray, given: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain Gaussian conditioning of ``N(mean, cov)`` on the entries ``given`` (integer
    indices) taking ``values``: the remaining entries' indices, conditional mean
    ``m_a + C_ag C_gg^-1 (values - m_g)`` and covariance ``C_aa - C_ag C_gg^-1 C_ga``
    (Anderson 2003, thm. 2.5.1). Use it on ``DensePosterior.joint_mean``/``joint_cov`` to
    condition the patients' traits on chosen therapist parts."""
    mean = np.asarray(mean, dtype=float)
    cov = np.asarray(cov, dtype=float)
    given = np.asarray(given, dtype=int)
    rest = np.setdiff1d(np.arange(mean.size), given)
    factor = linalg.cho_factor(cov[np.ix_(given, given)])
    gain = linalg.cho_solve(factor, cov[np.ix_(given, rest)]).T
    cond_mean = mean[rest] + gain @ (np.asarray(values, dtype=float) - mean[given])
    cond_cov = cov[np.ix_(rest, rest)] - gain @ cov[np.ix_(given, rest)]
    return rest, cond_mean, 0.5 * (cond_cov + cond_cov.T)


__all__ += ["gaussian_condition"]
