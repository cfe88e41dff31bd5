"""Therapist profiles from a fitted result: each therapist's trait deviation and their
patients' average state-effect deviation with intervals (:func:`therapist_profiles`), and the
caterpillar plot of them (:func:`caterpillar`); see docs/feedback.md."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, FEEDBACK_CI_PROB, interval_bounds
from bayes_alliance.feedback.patient_feedback import interval
from bayes_alliance.inference.fit import FitResult
from bayes_alliance.inference.unit_group import posterior_of

v = vocab
__all__ = ["caterpillar", "therapist_profiles"]


def therapist_profiles(result: FitResult, ci_prob: float = FEEDBACK_CI_PROB) -> pd.DataFrame:
    """Each therapist's trait deviation (the therapist part of the alliance latent mean) and,
    with therapist random slopes, their patients' average state-effect deviation (therapist
    plus any patient slope deviation, averaged over the caseload), each as posterior mean with
    an equal-tailed interval; one row per therapist, sorted by the trait deviation.

    ``df.attrs["correlation"]``: the model's correlation of a therapist's slope deviation with
    their part of the alliance latent mean (``slope_trait_corr_therapist_predictor``, mean and
    interval), or None (no therapist slopes, or a fit from before 0.3 whose prior made the two
    independent); ``df.attrs["note"]`` says what is missing and why.

    The correlation is the population parameter of the therapists' 3 x 3 covariance, not a
    correlation of the shrunken per-therapist estimates (which a prior of independent parts
    pulls towards 0).
    """
    data, spec = result.data, result.spec
    post = posterior_of(result.idata)
    if not spec.therapist_level or data.therapists is None or data.patient_therapist is None:
        raise ValueError("therapist profiles need a fit with the therapist level")
    trait = np.asarray(post["therapist_dev_predictor"].values)  # (chain, draw, therapist)
    n_t = len(data.therapists)
    counts = np.bincount(data.patient_therapist, minlength=n_t)
    rows: dict[str, Any] = {v.THERAPIST: data.therapists.tolist(), "n_patients": counts}
    for k, val in _columns_of(trait, ci_prob).items():
        rows[f"trait_dev_{k}"] = val
    slope = None
    note = ""
    if v.THERAPIST in spec.random_slopes:
        devs = result.slope_deviations()
        total = sum(devs.values())  # (chain, draw, patient)
        assert isinstance(total, np.ndarray)
        onehot = np.zeros((data.n_patients, n_t))
        onehot[np.arange(data.n_patients), data.patient_therapist] = 1.0
        slope = total @ onehot / np.maximum(counts, 1)
        for k, val in _columns_of(slope, ci_prob).items():
            rows[f"state_effect_dev_{k}"] = val
    else:
        note = (
            "This fit has no therapist random slopes (random_slopes without 'therapist'), so "
            "therapists do not differ in the state effect in the model: only the trait part "
            "is reported. Refit with therapist random slopes to profile both."
        )
        for k in ("mean", "ci_low", "ci_high"):
            rows[f"state_effect_dev_{k}"] = np.full(n_t, np.nan)
    df = pd.DataFrame(rows).sort_values("trait_dev_mean", kind="stable").reset_index(drop=True)
    df.attrs["correlation"] = None
    if slope is not None and v.SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR in post:
        r = np.asarray(post[v.SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR].values)
        df.attrs["correlation"] = interval(r, ci_prob)
    elif slope is not None:
        note = (
            "This fit predates the therapists' slope-trait covariance (0.3): its prior made "
            "the two parts independent, so no correlation is reported. Refit to estimate it."
        )
    df.attrs["note"] = note
    df.attrs["ci_prob"] = ci_prob
    return df


def _columns_of(draws: np.ndarray, ci_prob: float) -> dict[str, np.ndarray]:
    flat = draws.reshape(-1, draws.shape[-1])
    lo, hi = interval_bounds(flat, ci_prob, BAND_KIND, axis=0)
    return {"mean": flat.mean(axis=0), "ci_low": lo, "ci_high": hi}


def caterpillar(profiles: pd.DataFrame, variable: str = "alliance") -> Any:
    """Caterpillar plot of the therapist profiles: one panel per part, therapists in the
    order of their trait deviation."""
    import matplotlib.pyplot as plt

    parts = [("trait_dev", f"therapist part of the latent {variable} mean")]
    if profiles["state_effect_dev_mean"].notna().any():
        parts.append(("state_effect_dev", "patients' average state-effect deviation"))
    n = len(profiles)
    fig, axes = plt.subplots(
        1, len(parts), figsize=(4.2 * len(parts), 1.2 + 0.18 * n), sharey=True, squeeze=False
    )
    ypos = np.arange(n)
    for ax, (key, title) in zip(axes[0], parts, strict=True):
        m = profiles[f"{key}_mean"].to_numpy()
        lo, hi = profiles[f"{key}_ci_low"].to_numpy(), profiles[f"{key}_ci_high"].to_numpy()
        ax.hlines(ypos, lo, hi, color="#6baed6", lw=2)
        ax.plot(m, ypos, "o", color="#08519c", ms=3)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(title, fontsize=9)
    axes[0][0].set_yticks(ypos, [str(t) for t in profiles[v.THERAPIST]], fontsize=7)
    axes[0][0].set_ylabel("therapist")
    fig.tight_layout()
    return fig
