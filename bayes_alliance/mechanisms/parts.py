"""Pieces both forms of the mechanism model build the same way: the dimensions, an
unstructured covariance (LKJ prior, half-normal SDs) and each patient's lag matrix with its
random lagged paths (:mod:`bayes_alliance.mechanisms.model`,
:mod:`bayes_alliance.mechanisms.integrated`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from bayes_alliance.core.vocab import PATH, PATIENT, SERIES, THERAPIST
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.priors import OLD_LKJ_ETA, MechanismPriors
from bayes_alliance.mechanisms.spec import MechanismSpec, path_name

LKJ_ETA = OLD_LKJ_ETA
PATH_THERAPIST = f"{PATH}_therapist"  # dim of the random paths that vary between therapists


def cov_chol(
    name: str,
    dims: str,
    sd_scale: np.ndarray,
    n: int,
    eta: float = LKJ_ETA,
    gamma: bool = False,
) -> pt.TensorVariable:
    """An unstructured covariance's Cholesky factor (LKJ(eta) prior), with the SDs and
    correlations stored as ``sd_<name>`` and ``corr_<name>``; of one variable (one series) its
    SD ``sd_<name>`` alone, as the LKJ prior needs two. The SDs are half-normal with scale
    ``sd_scale``, or with ``gamma`` Gamma(2, rate 2 / sd_scale) (mean ``sd_scale``, density 0 at
    0: the joint model's therapist SDs, :func:`bayes_alliance.model.priors.therapist_sd_prior`)."""
    # a data container in the integrated model (mechanisms.containers)
    scale = sd_scale if isinstance(sd_scale, Variable) else np.asarray(sd_scale, dtype=float)
    if n == 1:
        if gamma:
            sd = pm.Gamma(f"sd_{name}", alpha=2.0, beta=2.0 / scale, dims=dims)
        else:
            sd = pm.HalfNormal(f"sd_{name}", sigma=scale, dims=dims)
        return sd[:, None]
    sd_dist = (
        pm.Gamma.dist(alpha=2.0, beta=2.0 / scale, shape=n)
        if gamma
        else pm.HalfNormal.dist(sigma=scale, shape=n)
    )
    chol, corr, sds = pm.LKJCholeskyCov(
        f"chol_{name}",
        n=n,
        eta=eta,
        sd_dist=sd_dist,
        compute_corr=True,
        store_in_trace=False,
    )
    pm.Deterministic(f"sd_{name}", sds, dims=dims)
    pm.Deterministic(f"corr_{name}", corr, dims=(dims, f"{dims}_"))
    return chol


def model_coords(data: SeriesData, spec: MechanismSpec) -> dict[str, list[object]]:
    """The model's dimensions: the data's, the series twice (matrices), the patient effects
    with a trend, the random paths."""
    coords = data.coords()
    roles: list[object] = list(data.roles)
    coords[f"{SERIES}_"] = roles
    coords[f"{SERIES}_from"] = roles
    if spec.trend:
        effects: list[object] = [*data.roles, "change"]
        coords["patient_effect"] = effects
        coords["patient_effect_"] = effects
    if spec.random_paths:
        names: list[object] = [path_name(a, b) for a, b in spec.random_paths]
        coords[PATH] = names
        coords[f"{PATH}_"] = names
    if spec.therapist_paths:
        between: list[object] = [path_name(a, b) for a, b in spec.therapist_paths]
        coords[PATH_THERAPIST] = between
        coords[f"{PATH_THERAPIST}_"] = between
    return coords


def lag_matrices(
    data: SeriesData,
    spec: MechanismSpec,
    priors: MechanismPriors,
    therapist_of: Any = None,
    patient_chol: pt.TensorVariable | None = None,
) -> pt.TensorVariable:
    """Each patient's lag matrix (n, k, k): the average lags plus the random paths'
    deviations (one path: independent SD; several: unstructured covariance), with
    ``spec.therapist_paths`` the therapist's deviations added (``Phi + c_j + d_i``).
    ``path_deviation`` (patients x paths) is each patient's whole deviation from the average,
    ``d_i`` plus, for a path that varies between therapists, ``c_j``
    (``path_deviation_therapist``, therapists x therapist paths). ``therapist_of``: each
    patient's therapist (a container), by default ``data.patient_therapist``.
    ``patient_chol``: the patients' deviations' Cholesky factor when the caller made it (a
    covariance shared with the latent means, :mod:`bayes_alliance.mechanisms.integrated`),
    else their own."""
    n, k = data.n_patients, data.k
    paths = spec.random_paths or ()
    idx = {r: i for i, r in enumerate(data.roles)}
    lag = pm.Normal("lag", 0.0, priors.lag, dims=(SERIES, f"{SERIES}_from"))
    phi = pt.broadcast_to(lag, (n, k, k))
    if not paths:
        return phi
    pos = np.zeros((len(paths), k, k))
    for r, (to, source) in enumerate(paths):
        pos[r, idx[to], idx[source]] = 1.0
    if patient_chol is None:
        dev = _deviations("paths", "path_offset", PATIENT, PATH, priors.sd_paths)
    else:
        dev = pm.Normal("path_offset", 0.0, 1.0, dims=(PATIENT, PATH)) @ patient_chol.T
    if spec.therapist_paths:
        assert data.patient_therapist is not None
        dev_t = _deviations(
            "paths_therapist", "path_offset_therapist", THERAPIST, PATH_THERAPIST,
            priors.sd_paths_therapist,
        )  # fmt: skip
        pm.Deterministic("path_deviation_therapist", dev_t, dims=(THERAPIST, PATH_THERAPIST))
        # the therapist paths' columns among the patient paths
        embed = np.zeros((len(spec.therapist_paths), len(paths)))
        for r, pair in enumerate(spec.therapist_paths):
            embed[r, paths.index(pair)] = 1.0
        tj = data.patient_therapist if therapist_of is None else therapist_of
        dev = dev + (dev_t @ pt.as_tensor(embed))[tj]
    pm.Deterministic("path_deviation", dev, dims=(PATIENT, PATH))
    return phi + pt.tensordot(dev, pt.as_tensor(pos), axes=1)


def _deviations(
    name: str, offset: str, unit: str, dim: str, scale: np.ndarray
) -> pt.TensorVariable:
    """Non-centred deviations (units x paths) with half-normal SDs ``sd_<name>`` and, for
    several paths, an LKJ(2) correlation ``corr_<name>``; two paths through
    :func:`_two_paths`."""
    off = pm.Normal(offset, 0.0, 1.0, dims=(unit, dim))
    n = scale.type.shape[0] if isinstance(scale, Variable) else len(scale)
    if n == 2:
        return _two_paths(name, off, dim, scale)
    if n > 1:
        return off @ cov_chol(name, dim, scale, n).T
    sd = pm.HalfNormal(f"sd_{name}", sigma=scale, dims=dim)
    return off * sd[None, :]


def _two_paths(name: str, off: pt.TensorVariable, dim: str, scale: np.ndarray) -> pt.TensorVariable:
    r"""Two paths' deviations ``d_i = S B z_i`` from standard normal offsets ``z_i`` (rows of
    ``off``), with the SDs ``S = diag(s_1, s_2)`` (``sd_<name>``, half-normal) and the
    correlation :math:`\rho` (``corr_<name>``, LKJ(2)) sampled as parameters of their own, and
    the eigen square root of the correlation matrix

    .. math::

        B = \tfrac{1}{\sqrt 2}\begin{pmatrix} 1 & 1 \\ 1 & -1 \end{pmatrix}
            \operatorname{diag}\bigl(\sqrt{1 + \rho}, \sqrt{1 - \rho}\bigr),
        \qquad B B^\top = \begin{pmatrix} 1 & \rho \\ \rho & 1 \end{pmatrix}:

    the sum and the difference of the standardised deviations are independent with variances
    :math:`2 (1 \pm \rho)`. The prior is that of ``LKJCholeskyCov(n=2, eta=2,
    sd_dist=HalfNormal(scale))`` (independent half-normal SDs and an LKJ correlation, whose
    :math:`(\rho + 1) / 2` is Beta(2, 2); Lewandowski, Kurowicka & Joe 2009), and ``d_i`` is
    :math:`N(0, S R S)` given them; only the coordinates the sampler moves in differ.

    Why: with the Cholesky factor (``d_2 = s_2 (\rho z_1 + \sqrt{1 - \rho^2} z_2)``) a change
    of :math:`\rho` while the data hold the deviations needs a matching change of every unit's
    second offset (a shear), and on three-level within mediation (120 patients) the
    correlation of the a and b paths mixed slowest (bulk ESS about 400-480 of 2,000 draws,
    lag-1 autocorrelation 0.5) and failed R-hat 1.01 on 2 of 5 seeds. Here :math:`\rho` only
    scales two independent components, as an SD does its non-centred offsets (the SDs mix
    with ESS 800-900 there); see docs/convergence_and_time.md for the measurements.
    """
    sd = pm.HalfNormal(f"sd_{name}", sigma=scale, dims=dim)
    chol_corr = pm.LKJCorr(f"chol_corr_{name}", n=2, eta=LKJ_ETA)
    pm.Deterministic(f"corr_{name}", chol_corr @ chol_corr.T, dims=(dim, f"{dim}_"))
    rho = chol_corr[1, 0]
    half_sum = off[:, 0] * pt.sqrt((1.0 + rho) / 2.0)
    half_diff = off[:, 1] * pt.sqrt((1.0 - rho) / 2.0)
    return pt.stack([half_sum + half_diff, half_sum - half_diff], axis=1) * sd[None, :]


def therapist_chol(priors: MechanismPriors, k: int) -> pt.TensorVariable:
    """The therapist level's covariance of the k latent means (the prior rules' SDs and LKJ)."""
    return cov_chol(
        "therapist", SERIES, priors.sd_therapist, k, priors.trait_eta, priors.therapist_gamma
    )


def therapist_sd(name: str, scale: float, gamma: bool) -> pt.TensorVariable:
    """A scalar SD of therapists' parts (the end outcome's intercepts): Gamma(2) with mean
    ``scale`` under the current prior rules (``gamma``), else half-normal with that scale."""
    if gamma:
        return pm.Gamma(name, alpha=2.0, beta=2.0 / scale)
    return pm.HalfNormal(name, scale)


__all__ = [
    "LKJ_ETA",
    "PATH_THERAPIST",
    "cov_chol",
    "lag_matrices",
    "model_coords",
    "therapist_chol",
    "therapist_sd",
]
