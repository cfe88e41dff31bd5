r"""Each patient's marginal log density in a continuous-time fit, per posterior draw (the
leave-one-patient-out unit of :mod:`bayes_alliance.analysis.comparison`).

As :mod:`bayes_alliance.analysis.patient_density` for session numbers: given a draw's
parameters and its therapist parts, a patient's observed cells are Gaussian with the latent
mean integrated out. The Kalman filter of :func:`bayes_alliance.kernels.gaps.filter_factor`
(its numba kernel: :func:`bayes_alliance.inference.filter_draws.filter_cells`) with one lag
matrix and innovation covariance per interval (``Phi(dt) = expm(A dt)``,
``Q(dt) = S - Phi S Phi'``; :func:`bayes_alliance.model.continuous.posthoc_dynamics`) gives
``log p(z_i | M) = log C - 1/2 [q - 2 g'M + M' L M]``, and the latent mean ``M ~ N(0, T)``
integrates out in closed form (:func:`bayes_alliance.kernels.marginal.mean_integral`)::

    log p(z_i) = log C - 1/2 log|I + T L| - 1/2 (q - g' (T^-1 + L)^-1 g).

Complete series without measurement error take the same factor in closed form from their
cells (:func:`bayes_alliance.kernels.marginal.cell_factor`) instead of the filter. The
therapist parts and the patient's own cross effect (random slopes) are conditioned on, as
for session numbers. Numpy, one draw at a time over all patients.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayes_alliance.core import vocab as v
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference.filter_draws import filter_cells
from bayes_alliance.inference.posthoc import PosthocGrid
from bayes_alliance.kernels import marginal
from bayes_alliance.model import continuous
from bayes_alliance.model.structure import lookup, therapist_part, trait_cov
from bayes_alliance.spec.model_spec import ModelSpec


def patient_loglik(
    post: Mapping[str, np.ndarray], data: SessionData, spec: ModelSpec
) -> np.ndarray:
    """Marginal log density of each patient's observed cells, (chain, draw, patient), of a
    continuous-time fit (``post``: arrays (chain, draw, ...) by name as
    :func:`bayes_alliance.analysis.patient_density.patient_loglik` takes them)."""
    lay = PosthocGrid.of(data, spec)
    assert lay.intervals is not None
    like = np.asarray(post[v.DRIFT_STATE_EFFECT])
    n_c, n_d = like.shape[:2]
    out = np.empty((n_c, n_d, data.n_patients))
    for c in range(n_c):
        for d in range(n_d):
            p = {k: np.asarray(val)[c, d] for k, val in post.items()}
            get = lookup(p, spec)
            dyn = continuous.posthoc_dynamics(
                get, spec, lay.intervals, lay.z, lay.tj, slope=p.get("state_effect_by_patient")
            )
            kx, ky = lay.known_cells(get, spec, data.n_patients)
            if spec.therapist_level:
                top_x, top_y = therapist_part(get, data.patient_therapist)
                kx, ky = kx + top_x[:, None], ky + top_y[:, None]
            if lay.complete_cells:  # complete series: closed form from the cells
                log_c, factor = marginal.cell_factor(
                    lay.grid.x - kx,
                    lay.grid.y - ky,
                    dyn.phi,
                    dyn.sigma,
                    dyn.first,
                    lay.idx.first,
                    lay.inside,
                )
            else:
                cells, error, _ = lay.scores(get, kx, ky, dyn)  # no indicators here
                log_c, factor, _ = filter_cells(cells, dyn, error, innovations=False)
            tau = trait_cov(get, v.PATIENT)
            out[c, d] = log_c + marginal.mean_integral(factor, (0.0, 0.0), tau)
    return out


__all__ = ["patient_loglik"]
