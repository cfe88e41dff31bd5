r"""Sessions on real dates from the continuous-time model, for tests and recovery studies of
:mod:`bayes_alliance.model.continuous`.

Each patient i (of therapist j) has latent means ``mu + u_j + m_i`` and within-person
deviations following ``dw = A_i w dt + G dW`` (Oud & Jansen 2000; Voelkle et al. 2012), with
``A_i`` the drift whose cross effect ``A_yx`` may vary between patients (``sd_cross``). The
series is drawn exactly at the session times, interval by interval (no Euler steps)::

    w(t_1) ~ N(0, S_i),   w(t_k) = Phi_i(dt_k) w(t_(k-1)) + u_k,   u_k ~ N(0, S_i - Phi S_i Phi'),
    Phi_i(dt) = expm(A_i dt),   A_i S_i + S_i A_i' + G G' = 0

with intervals drawn uniformly from whole days ``interval_days`` (e.g. 1 to 21: weekly
sessions with cancellations and holidays), and the session column as real calendar dates
from a start date per patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_alliance.kernels import ctime


@dataclass(frozen=True)
class ContinuousTruth:
    """The generating values: drift (per day), diffusion covariance, trait means and SDs, each
    patient's cross effect."""

    drift: np.ndarray
    diffusion: np.ndarray
    means: tuple[float, float]
    trait_cov: np.ndarray
    therapist_cov: np.ndarray | None
    cross_by_patient: np.ndarray = field(default_factory=lambda: np.zeros(0))


def simulate_dated(
    *,
    seed: int,
    n_patients: int = 100,
    n_sessions: int = 15,
    drift: np.ndarray | None = None,
    diffusion: np.ndarray | None = None,
    interval_days: tuple[int, int] = (1, 21),
    means: tuple[float, float] = (4.0, 2.5),
    trait_cov: np.ndarray | None = None,
    n_therapists: int = 0,
    therapist_cov: np.ndarray | None = None,
    sd_cross: float = 0.0,
    start: str = "2024-01-08",
) -> tuple[pd.DataFrame, ContinuousTruth]:
    """A long table (``patient``, ``therapist`` with ``n_therapists``, ``date`` as
    ``YYYY-MM-DD`` strings, ``alliance`` = x, ``symptoms`` = y) from the continuous-time model
    (module docstring), and its truth. Defaults: ``drift = [[-0.15, 0.03], [-0.05, -0.1]]``
    per day (half-lives of about 5 and 7 days), ``diffusion = [[0.2, 0.05], [0.05, 0.3]]``."""
    rng = np.random.default_rng(seed)
    a = np.array([[-0.15, 0.03], [-0.05, -0.1]]) if drift is None else np.asarray(drift, float)
    q = np.array([[0.2, 0.05], [0.05, 0.3]]) if diffusion is None else np.asarray(diffusion, float)
    tcov = np.array([[0.5, 0.1], [0.1, 0.6]]) if trait_cov is None else np.asarray(trait_cov)
    qe = (q[0, 0], q[0, 1], q[1, 1])
    cross = a[1, 0] + sd_cross * rng.standard_normal(n_patients)
    ther, tc = None, None
    if n_therapists:
        tc = np.array([[0.1, 0.02], [0.02, 0.15]]) if therapist_cov is None else therapist_cov
        ther = rng.multivariate_normal([0.0, 0.0], tc, size=n_therapists)
    lo, hi = interval_days
    first_day = pd.Timestamp(start)
    rows = []
    for i in range(n_patients):
        drift_i = (a[0, 0], a[0, 1], cross[i], a[1, 1])
        if not ctime.stable(drift_i):
            raise ValueError(f"patient {i}: the drawn cross effect {cross[i]:.3g} is not stable")
        s = np.array(ctime.stationary_cov(drift_i, qe))
        stat = np.array([[s[0], s[1]], [s[1], s[2]]])
        mean = np.asarray(means) + rng.multivariate_normal([0.0, 0.0], tcov)
        j = i % n_therapists if n_therapists else None
        if ther is not None and j is not None:
            mean = mean + ther[j]
        w = rng.multivariate_normal([0.0, 0.0], stat)
        day = first_day + pd.Timedelta(days=int(rng.integers(0, 60)))
        for k in range(n_sessions):
            if k:
                dt = int(rng.integers(lo, hi + 1))
                day = day + pd.Timedelta(days=dt)
                phi = np.array(ctime.expm(drift_i, float(dt))).reshape(2, 2)
                w = phi @ w + rng.multivariate_normal([0.0, 0.0], stat - phi @ stat @ phi.T)
            z = mean + w
            row = {"patient": f"P{i:04d}", "date": day.strftime("%Y-%m-%d")}
            if j is not None:
                row["therapist"] = f"T{j:03d}"
            rows.append({**row, "alliance": z[0], "symptoms": z[1]})
    truth = ContinuousTruth(a, q, means, tcov, tc, cross)
    return pd.DataFrame(rows), truth


__all__ = ["ContinuousTruth", "simulate_dated"]
