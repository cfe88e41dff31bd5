"""Default priors on the data's scale, and prior overrides by parameter name.

Every slope prior is scaled by the ratio of the variables' SDs, so that the same prior means the
same thing whatever units the data come in: a path from x to y gets SD ``sd_y / sd_x``, a path
from y to x gets ``sd_x / sd_y``, and a moderator of the state effect gets the state effect's
scale divided by the moderator's SD, and a baseline characteristic z's paths (between-level
mediation) get ``sd_x / sd_z`` (to the predictor's latent mean) and ``sd_y / sd_z`` (direct, to
the outcome's): one SD of z may move a latent mean by about one SD of its variable. Intercepts and variance parameters follow the SDs of the
variables they describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab


@dataclass(frozen=True)
class DataScale:
    """Location and scale of the data, used to set weakly informative default priors."""

    mean_x: Any
    mean_y: Any
    sd_x: Any
    sd_y: Any

    @classmethod
    def of(cls, data: SessionData) -> DataScale:
        sd_x = float(np.nanstd(data.x)) or 1.0
        sd_y = float(np.nanstd(data.y)) or 1.0
        return cls(float(np.nanmean(data.x)), float(np.nanmean(data.y)), sd_x, sd_y)


def default_priors(
    spec: ModelSpec, s: DataScale, moderator_sd: Any = 1.0, baseline_sd: Any = 1.0
) -> dict[str, dict[str, Any]]:
    """Weakly informative priors on the data's scale, with the spec's overrides applied.

    Parameters
    ----------
    spec
        Model options; ``spec.priors`` replaces defaults by name (checked, with suggestions).
    s
        Location and scale of the data (floats, or ``pm.Data`` containers in a compiled model).
    moderator_sd
        SD of each moderator across patients (a vector when there are several).
    baseline_sd
        SD of each baseline characteristic across the units of its level, patients or
        therapists (a vector when there are several).
    """
    ratio = s.sd_y / s.sd_x
    lag0 = 1.0 / ratio if spec.same_session == "outcome_to_predictor" else ratio
    p: dict[str, dict[str, Any]] = {
        v.STATE_EFFECT: {"dist": "Normal", "mu": 0.0, "sigma": ratio},
        v.REVERSE_STATE_EFFECT: {"dist": "Normal", "mu": 0.0, "sigma": 1.0 / ratio},
        v.OUTCOME_AUTOREGRESSION: {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
        v.PREDICTOR_AUTOREGRESSION: {"dist": "Normal", "mu": 0.0, "sigma": 0.5},
        v.SAME_SESSION_EFFECT: {"dist": "Normal", "mu": 0.0, "sigma": lag0},
        v.TRAIT_EFFECT_PATIENT: {"dist": "Normal", "mu": 0.0, "sigma": 2 * ratio},
        v.TRAIT_EFFECT_THERAPIST: {"dist": "Normal", "mu": 0.0, "sigma": 2 * ratio},
        v.INTERCEPT_PREDICTOR: {"dist": "Normal", "mu": s.mean_x, "sigma": 2.5 * s.sd_x},
        v.INTERCEPT_OUTCOME: {"dist": "Normal", "mu": s.mean_y, "sigma": 2.5 * s.sd_y},
        "session_mean_predictor": {"dist": "Normal", "mu": s.mean_x, "sigma": 2.5 * s.sd_x},
        "session_mean_outcome": {"dist": "Normal", "mu": s.mean_y, "sigma": 2.5 * s.sd_y},
        v.SD_PATIENT_PREDICTOR: {"dist": "HalfNormal", "sigma": s.sd_x},
        v.SD_PATIENT_OUTCOME: {"dist": "HalfNormal", "sigma": s.sd_y},
        v.SD_THERAPIST_PREDICTOR: {"dist": "HalfNormal", "sigma": 0.5 * s.sd_x},
        v.SD_THERAPIST_OUTCOME: {"dist": "HalfNormal", "sigma": 0.5 * s.sd_y},
        v.SD_STATE_EFFECT_PATIENT: {"dist": "HalfNormal", "sigma": 0.25 * ratio},
        v.SD_STATE_EFFECT_THERAPIST: {"dist": "HalfNormal", "sigma": 0.25 * ratio},
        v.INNOVATION_SD_PREDICTOR: {"dist": "HalfNormal", "sigma": s.sd_x},
        v.INNOVATION_SD_OUTCOME: {"dist": "HalfNormal", "sigma": s.sd_y},
        v.INNOVATION_CORR: {"dist": "Uniform", "lower": -1.0, "upper": 1.0},
        # Per unit of the moderator: the state effect's scale over the moderator's SD.
        v.MODERATOR_EFFECT: {"dist": "Normal", "mu": 0.0, "sigma": 0.5 * ratio / moderator_sd},
        # Baseline z -> latent means (per unit of z): one SD of z ~ one SD of the variable.
        v.BASELINE_EFFECT_PREDICTOR: {"dist": "Normal", "mu": 0.0, "sigma": s.sd_x / baseline_sd},
        v.BASELINE_EFFECT_OUTCOME: {"dist": "Normal", "mu": 0.0, "sigma": s.sd_y / baseline_sd},
        v.TREND_PREDICTOR: {"dist": "Normal", "mu": 0.0, "sigma": 0.1 * s.sd_x},
        v.TREND_OUTCOME: {"dist": "Normal", "mu": 0.0, "sigma": 0.1 * s.sd_y},
        v.SD_TREND_PREDICTOR: {"dist": "HalfNormal", "sigma": 0.05 * s.sd_x},
        v.SD_TREND_OUTCOME: {"dist": "HalfNormal", "sigma": 0.05 * s.sd_y},
        "first_sd_predictor": {"dist": "HalfNormal", "sigma": s.sd_x},
        "first_sd_outcome": {"dist": "HalfNormal", "sigma": s.sd_y},
        "first_corr": {"dist": "Uniform", "lower": -1.0, "upper": 1.0},
    }
    allowed = spec.prior_names()
    vocab.check_names(spec.priors, allowed, "parameter in priors")
    return {k: dict(spec.priors.get(k, p[k])) for k in allowed}


def make_rv(name: str, prior: dict[str, Any], **kw: Any) -> pt.TensorVariable:
    """A PyMC random variable from a prior mapping ``{"dist": ..., <arguments>}``."""
    params = {k: val for k, val in prior.items() if k != "dist"}
    try:
        return getattr(pm, prior["dist"])(name, **params, **kw)
    except TypeError as exc:
        raise ValueError(f"prior for {name!r}: {exc}") from None


def numeric(prior: dict[str, Any]) -> dict[str, Any]:
    """The prior with every argument evaluated to a float or list (for tables and reports)."""
    out: dict[str, Any] = {"dist": prior["dist"]}
    for k, val in prior.items():
        if k == "dist":
            continue
        arr = np.asarray(val.eval() if hasattr(val, "eval") else val, dtype=float)
        out[k] = float(arr) if arr.ndim == 0 else arr.tolist()
    return out
