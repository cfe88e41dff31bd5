r"""Between-level mediation by a baseline characteristic, per posterior draw: the mediation
effects (indirect, direct, total, proportion mediated) at the baseline's level, and its shares of
the latent means' variances (docs/methods.md, section 'Between-level mediation'). A
patient-level baseline of three-level data
is split at the therapists (:func:`bayes_alliance.model.covariates.baseline_split_values`): its
within part mediates through the patient-level trait effect, its between part through the
therapist-level one, each with its own effects and its own share.

Functions take a dict of posterior arrays (each shaped (chain, draw) or (chain, draw, k)) and
the data's :class:`~bayes_alliance.effects.variance.Design`, as in
:mod:`bayes_alliance.effects.derived` (which re-exports them).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayes_alliance.core import vocab
from bayes_alliance.effects.variance import Design

Draws = Mapping[str, np.ndarray]
v = vocab


def baseline_variances(
    post: Draws, design: Design, like: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Variance of the latent means explained by the baseline at its level, per draw:

    .. math::

        g_x = a' S a, \qquad g_y = (c' + b a)' S (c' + b a),

    with S the covariance of the centred baseline over the units of its level (each patient,
    or each therapist, once, as the moderators' values and the random parts' variances count
    them) and b the trait effect at that level (``trait_effect_patient`` or
    ``trait_effect_therapist``). The shares add to the between-patient variances of the latent
    means for a patient-level baseline and to the between-therapist ones for a therapist-level
    baseline (``design.baseline_level``). Zeros without a baseline."""
    if design.baseline is None:
        return np.zeros_like(like), np.zeros_like(like)
    return _path_variances(
        post,
        design.baseline,
        (v.BASELINE_EFFECT_PREDICTOR, v.BASELINE_EFFECT_OUTCOME),
        v.BASELINE_MEDIATOR[design.baseline_level],
    )


def _path_variances(
    post: Draws, g: np.ndarray, paths: tuple[str, str], mediator: str
) -> tuple[np.ndarray, np.ndarray]:
    """``a' S a`` and ``(c' + b a)' S (c' + b a)`` of the rows g (units x columns) per draw."""
    cov = g.T @ g / len(g)
    a = np.asarray(post[paths[0]], dtype=float)
    b = np.asarray(post[mediator], dtype=float)[..., None]
    total = np.asarray(post[paths[1]], dtype=float) + b * a
    return (
        np.einsum("...k,kl,...l->...", a, cov, a),
        np.einsum("...k,kl,...l->...", total, cov, total),
    )


def baseline_shares(
    post: Draws, design: Design, like: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The baseline's shares of the latent means' variances at each level, per draw:
    ``(x between patients, y between patients, x between therapists, y between therapists)``.

    A patient-level baseline adds :func:`baseline_variances` between patients, a
    therapist-level one between therapists. A patient-level baseline of three-level data split
    at the therapists (``design.baseline_between``) adds its within part between patients
    (paths a_W, c'_W, b_P, S_W over patients) and its between part between therapists

    .. math::

        a_B' S_B a_B, \qquad (c'_B + b_T a_B)' S_B (c'_B + b_T a_B),

    S_B the covariance of the centred therapist means over therapists. The within rows sum
    to 0 within every therapist, so the two parts are uncorrelated and the shares add."""
    gx, gy = baseline_variances(post, design, like)
    zero = np.zeros_like(like)
    if design.baseline_between is not None:
        bx, by = _path_variances(
            post,
            design.baseline_between,
            (v.BASELINE_EFFECT_PREDICTOR_BETWEEN, v.BASELINE_EFFECT_OUTCOME_BETWEEN),
            v.BASELINE_MEDIATOR[v.THERAPIST],
        )
        return gx, gy, bx, by
    if design.baseline_level == v.THERAPIST:
        return zero, zero, gx, gy
    return gx, gy, zero, zero


MEDIATION_BETWEEN = (
    "indirect_effect_between",
    "direct_effect_between",
    "total_effect_between",
    "proportion_mediated_between",
)
# The same effects of a therapist-level baseline: their own names, so that a table never
# mixes them up with the patient-level ones.
MEDIATION_BETWEEN_THERAPIST = tuple(f"{n}_{v.THERAPIST}" for n in MEDIATION_BETWEEN)


def mediation_names(level: str = v.PATIENT) -> tuple[str, ...]:
    """Names of the mediation effects of a baseline at ``level``: indirect, direct, total,
    proportion mediated."""
    return MEDIATION_BETWEEN_THERAPIST if level == v.THERAPIST else MEDIATION_BETWEEN


def mediation_between(
    post: Draws, level: str = v.PATIENT, split: bool = False
) -> dict[str, np.ndarray]:
    r"""Between-level mediation effects of a baseline characteristic z per draw.

    With a = ``baseline_effect_predictor`` (z -> the predictor's latent mean), b =
    ``trait_effect_patient`` (the predictor's latent mean -> the outcome's, between patients of
    one therapist) and c' = ``baseline_effect_outcome`` (z -> the outcome's latent mean
    directly), in the product-of-coefficients form (MacKinnon 2008, ch. 3; Preacher, Zyphur &
    Zhang 2010 for the latent between-level paths of multilevel SEM). For a therapist-level
    baseline (``level="therapist"``) a and c' act on the therapists' parts of the latent means
    and b is ``trait_effect_therapist`` (b_T, between therapists); the effects are then named
    ``*_between_therapist`` (:func:`mediation_names`). At either level:

    .. math::

        \text{indirect} = a b, \quad \text{direct} = c', \quad
        \text{total} = c' + a b, \quad \text{proportion mediated} = \frac{a b}{a b + c'}.

    Each is computed draw by draw, so its interval carries the posterior uncertainty of a and b
    jointly (no normal approximation of the product, unlike the Sobel test). The proportion is
    unstable when the total effect is near 0 (its draws then run to +-infinity; summarise it
    with care, or report the indirect and total effects instead). Arrays (chain, draw) for one
    baseline column; (chain, draw, column) for several.

    ``split``: a patient-level baseline of three-level data split at the therapists
    (:func:`bayes_alliance.model.covariates.baseline_split_values`). The effects above are
    then those of its within-therapist part (a_W b_P, c'_W, ...: a patient's difference from
    their therapist's other patients), and those of its between-therapist part, a_B b_T with
    a_B, c'_B = ``baseline_effect_*_between``, are named as a therapist-level baseline's
    (``*_between_therapist``): the therapist means of z act on the therapist parts exactly as a
    therapist characteristic does.
    """
    out = _mediation(
        post,
        (v.BASELINE_EFFECT_PREDICTOR, v.BASELINE_EFFECT_OUTCOME),
        level,
        mediation_names(level),
    )
    if split:
        between = (v.BASELINE_EFFECT_PREDICTOR_BETWEEN, v.BASELINE_EFFECT_OUTCOME_BETWEEN)
        out.update(_mediation(post, between, v.THERAPIST, MEDIATION_BETWEEN_THERAPIST))
    return out


def _mediation(
    post: Draws, paths: tuple[str, str], level: str, names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Indirect a b, direct c', total c' + a b and proportion a b / (c' + a b) per draw of the
    paths ``(a, c')`` with b the trait effect at ``level``, under ``names``."""
    a = np.asarray(post[paths[0]], dtype=float)
    c = np.asarray(post[paths[1]], dtype=float)
    b = np.asarray(post[v.BASELINE_MEDIATOR[level]], dtype=float)
    b = b.reshape(b.shape + (1,) * (a.ndim - b.ndim))
    indirect = a * b
    total = c + indirect
    with np.errstate(divide="ignore", invalid="ignore"):
        proportion = indirect / total
    out = dict(zip(names, (indirect, c, total, proportion), strict=True))
    if a.ndim > 2 and a.shape[-1] == 1:  # one column: plain (chain, draw) rows
        out = {k: val[..., 0] for k, val in out.items()}
    return out


__all__ = [
    "MEDIATION_BETWEEN",
    "MEDIATION_BETWEEN_THERAPIST",
    "baseline_shares",
    "baseline_variances",
    "mediation_between",
    "mediation_names",
]
