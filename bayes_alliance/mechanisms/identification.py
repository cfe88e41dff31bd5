r"""Which combinations of a mechanism model's options these data can fit: every reason a
combination is not identified or not supported, collected and raised as one message.

The designs are blocks of one k-series VAR(1) (:mod:`bayes_alliance.mechanisms.model`): a
mediator, a second informant, both (k = 4), an end-of-treatment outcome, a therapist level,
random lagged paths, measurement error, random innovations and a trend combine freely where
the model is identified. What is refused, and why:

Not identified by the data
    * **No patient with 3 or more observed sessions.** With T sessions a patient's series
      has T(T+1)/2 covariance blocks. For T = 2 and one series the trait variance
      ``tau^2``, the first state's ``s_1^2``, the autoregression ``phi`` and the innovation
      variance ``sigma_e^2`` meet three moments::

          Var z_1 = tau^2 + s_1^2,   Var z_2 = tau^2 + phi^2 s_1^2 + sigma_e^2,
          Cov(z_2, z_1) = tau^2 + phi s_1^2

      (and k series add k(k+1)/2 more parameters than moments), so trait and state are not
      separated; measurement error (``omega^2`` on the variances) widens the gap. From
      T = 3 the lag-2 covariance ``tau^2 + phi^2 s_1^2`` and the third variance make the
      moments' Jacobian of full rank, with or without measurement error (checked
      numerically in the tests). One patient with three sessions suffices in principle;
      :mod:`bayes_alliance.data.validate` warns about each short patient.
    * **A therapist level with one therapist**: the therapist's part of each latent mean is
      the intercept.
    * **A therapist level where every therapist has one patient**: ``u_j + v_i`` is one sum
      per patient, and its split into a therapist and a patient part has no information
      beyond the priors.

Not supported by the model
    * A binary end-of-treatment outcome with integrated traits (its logit is not Gaussian in
      the traits); measurement error or random innovations without integrated traits.
    * Options that name what the data lack: a therapist level without a therapist column,
      a random path or an error series of a role the data do not have, a random path twice,
      an unknown end family or trait form, a binary family for a non-binary column.

Fitted, not refused (identified, if weakly for some data): a mediator with a second informant
(k = 4, every lagged path free); random lags, random innovations and measurement error on
every series at k = 4; an end outcome with any design; a trend. Weak identification from the
fit (a change reliability below 0.3) is reported after sampling
(:func:`bayes_alliance.mechanisms.fit.identification_of`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayes_alliance.data.series_data import SeriesData

# Fewer observed sessions in every patient leave trait and state unseparated (module docstring).
MIN_SESSIONS = 3
END_FAMILIES = ("auto", "gaussian", "binary")
TRAIT_FORMS = ("auto", "integrated", "sampled")


class NotIdentifiedError(ValueError):
    """A mechanism model these data cannot fit as specified, with every reason at once."""

    def __init__(self, reasons: Sequence[str]):
        self.reasons = list(reasons)
        n = len(self.reasons)
        lines = [
            f"this mechanism model is not identified or not supported ({n} reason"
            f"{'s' if n != 1 else ''}):"
        ]
        lines += [f"  - {r}" for r in self.reasons]
        super().__init__("\n".join(lines))


def option_reasons(
    data: SeriesData,
    *,
    therapist_level: bool,
    random_paths: Sequence[tuple[str, str]],
    end_family: str,
    traits: str,
    measurement_error: Sequence[str],
) -> list[str]:
    """Why the options as given do not fit this data's series (empty when they do).

    ``end_family`` and ``traits`` as the user gave them (``"auto"`` allowed)."""
    roles = data.roles
    out: list[str] = []
    if therapist_level and data.patient_therapist is None:
        out.append("therapist_level=True needs a therapist column")
    for to, source in random_paths:
        for role in (to, source):
            if role not in roles:
                out.append(
                    f"random path '{to}<-{source}': no {role!r} series (series: {', '.join(roles)})"
                )
    if len(set(random_paths)) != len(random_paths):
        out.append("a random path is listed twice")
    if end_family not in END_FAMILIES:
        out.append(f"end_family must be one of {END_FAMILIES}, got {end_family!r}")
    if end_family == "binary" and data.end_outcome is not None and not data.end_is_binary():
        out.append(
            f"end-of-treatment outcome {data.end_column!r} must hold only 0 and 1 for a "
            "binary outcome"
        )
    if traits not in TRAIT_FORMS:
        out.append(f"traits must be one of {TRAIT_FORMS}, got {traits!r}")
    for role in measurement_error:
        if role not in roles:
            out.append(
                f"measurement error on {role!r}: no such series (series: {', '.join(roles)})"
            )
    return out


def form_reasons(
    data: SeriesData,
    *,
    binary_end: bool,
    traits: str,
    measurement_error: Sequence[str],
    random_innovations: bool,
) -> list[str]:
    """What the chosen form of the traits (settled: ``"integrated"`` or ``"sampled"``) does
    not support."""
    out: list[str] = []
    if traits == "integrated" and binary_end:
        out.append(
            "traits='integrated' needs a Gaussian end-of-treatment outcome: a binary "
            "outcome's logit is not Gaussian in the traits (use traits='sampled')"
        )
    if traits == "sampled" and measurement_error:
        why = " (a binary end-of-treatment outcome needs them sampled)" if binary_end else ""
        out.append(f"measurement error needs traits='integrated'{why}")
    if traits == "sampled" and random_innovations:
        why = " (a binary end-of-treatment outcome needs them sampled)" if binary_end else ""
        out.append(f"random innovations need traits='integrated'{why}")
    return out


def data_reasons(data: SeriesData, *, therapist_level: bool) -> list[str]:
    """What these data cannot identify whatever the options (module docstring)."""
    out: list[str] = []
    sessions = np.isfinite(data.z).any(axis=-1).sum(axis=1)
    if sessions.max() < MIN_SESSIONS:
        out.append(
            f"no patient has {MIN_SESSIONS} or more observed sessions (the longest has "
            f"{int(sessions.max())}): with two sessions the series' covariances are fewer "
            "than the trait, first-state, lag and innovation parameters, so the trait-like and "
            "state-like parts are not separated"
        )
    ther = data.patient_therapist
    if therapist_level and ther is not None:
        counts = np.bincount(ther)
        counts = counts[counts > 0]
        if len(counts) < 2:
            out.append(
                "a therapist level with one therapist: the therapist's part of each latent "
                "mean is the intercept (fit two levels)"
            )
        elif counts.max() < 2:
            out.append(
                "a therapist level where every therapist has one patient: the therapist and "
                "patient parts of the latent means are not separated (fit two levels)"
            )
    return out


__all__ = [
    "END_FAMILIES",
    "MIN_SESSIONS",
    "TRAIT_FORMS",
    "NotIdentifiedError",
    "data_reasons",
    "form_reasons",
    "option_reasons",
]
