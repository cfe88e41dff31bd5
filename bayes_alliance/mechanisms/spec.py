"""Options of the mechanism models: which series, which lagged paths vary between patients,
and the end-of-treatment outcome. Plain data, no PyMC (the split of an unfitted model from its
fit, as :mod:`bayes_alliance.spec.model_spec` does for the main model)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bayes_alliance.core.vocab import PATIENT, THERAPIST
from bayes_alliance.data.series_data import (
    MEDIATOR,
    OUTCOME,
    PREDICTOR,
    SECOND_PREDICTOR,
    SeriesData,
)
from bayes_alliance.mechanisms import identification
from bayes_alliance.mechanisms.baseline_data import (
    BASELINE_LEVELS,
    baseline_matrix,
    baseline_values,
    therapist_matrix,
    varying_within_therapist,
)
from bayes_alliance.mechanisms.identification import END_FAMILIES, TRAIT_FORMS

# The design of a mediator with a second informant (series predictor, second_predictor,
# mediator, outcome): each informant's a path to the mediator in one model.
MEDIATION_INFORMANTS = "mediation_informants"


# Names of the lagged paths ``lag[to, from]`` (the vocabulary's names where it has them), for
# ``--random-lags`` and the rows ``sd_<name>_patient``; any path may also be named ``to<-from``.
LAG_NAMES: dict[str, tuple[str, str]] = {
    "predictor_autoregression": (PREDICTOR, PREDICTOR),
    "outcome_autoregression": (OUTCOME, OUTCOME),
    "mediator_autoregression": (MEDIATOR, MEDIATOR),
    "second_autoregression": (SECOND_PREDICTOR, SECOND_PREDICTOR),
    "state_effect": (OUTCOME, PREDICTOR),
    "reverse_state_effect": (PREDICTOR, OUTCOME),
    "state_effect_second": (OUTCOME, SECOND_PREDICTOR),
    "effect_on_mediator": (MEDIATOR, PREDICTOR),
    "effect_on_mediator_second": (MEDIATOR, SECOND_PREDICTOR),
    "mediator_effect": (OUTCOME, MEDIATOR),
}


def default_random_paths(roles: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The random lagged paths of a design without ``--random-lags``: with a mediator each
    informant's a path (mediator <- predictor, and <- second_predictor when there is one)
    and the b path (outcome <- mediator); none otherwise."""
    if MEDIATOR not in roles:
        return ()
    sources = [r for r in (PREDICTOR, SECOND_PREDICTOR) if r in roles]
    return (*((MEDIATOR, s) for s in sources), (OUTCOME, MEDIATOR))


def lag_name(to: str, source: str) -> str:
    """The vocabulary's name of the path ``lag[to, from]``, or ``to<-from`` without one."""
    for name, pair in LAG_NAMES.items():
        if pair == (to, source):
            return name
    return path_name(to, source)


def lag_pairs(
    names: tuple[str, ...] | list[str], roles: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """The ``(to, from)`` pairs of lag names (``--random-lags``), checked against the data's
    series; an unknown name is an error that lists the names this design has."""
    known = {n: p for n, p in LAG_NAMES.items() if p[0] in roles and p[1] in roles}
    out = []
    for name in names:
        if name in known:
            out.append(known[name])
            continue
        if "<-" in name:
            to, source = name.split("<-", 1)
            if to in roles and source in roles:
                out.append((to, source))
                continue
        raise ValueError(
            f"random lag {name!r} is not a lagged path of these series; known: "
            f"{', '.join(known)} (or 'to<-from' with the series {', '.join(roles)})"
        )
    return tuple(out)


THERAPIST_SUFFIX = "@therapist"


def lag_levels(
    names: tuple[str, ...] | list[str], roles: tuple[str, ...]
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``--random-lags`` names split by level: ``NAME`` varies between patients,
    ``NAME@therapist`` between therapists as well (and so between patients too). Returns the
    patient-level and the therapist-level ``(to, from)`` pairs, each checked by
    :func:`lag_pairs`."""
    if len(set(names)) != len(names):
        raise ValueError(f"a random lag is listed twice: {list(names)}")
    plain = [n.removesuffix(THERAPIST_SUFFIX) for n in names]
    patient = lag_pairs(list(dict.fromkeys(plain)), roles)
    between = lag_pairs([p for n, p in zip(names, plain, strict=True) if n != p], roles)
    return patient, between


# Rows of the random lags' SDs: ``sd_<lag>_patient`` for a path the vocabulary names
# (``sd_state_effect_patient``), ``sd_path_<to<-from>`` for any other.


def random_lag_row(path: str, level: str = "patient") -> str:
    """The effects row of a random path's SD at ``level`` (``path`` as ``to<-from``)."""
    name = lag_name(*path_pair(path))
    if "<-" in name:
        return f"sd_path_{name}" + ("" if level == "patient" else f"_{level}")
    return f"sd_{name}_{level}"


def path_name(to: str, source: str) -> str:
    """Name of the lagged path ``source_(t-1) -> to_t`` (e.g. ``mediator<-predictor``)."""
    return f"{to}<-{source}"


def path_pair(name: str) -> tuple[str, str]:
    """The ``(to, from)`` series of a path named ``to<-from`` (:func:`path_name`)."""
    to, source = name.split("<-", 1)
    return to, source


def path_positions(
    roles: tuple[str, ...] | list[str], pairs: Iterable[tuple[str, str] | str]
) -> list[tuple[int, int]]:
    """Each path's ``(row, column)`` in the lag matrix ``Phi[to, from]`` of series ``roles``;
    a path as a ``(to, from)`` pair or its name ``to<-from``."""
    idx = {r: i for i, r in enumerate(roles)}
    out = []
    for pair in pairs:
        to, source = path_pair(pair) if isinstance(pair, str) else pair
        out.append((idx[to], idx[source]))
    return out


@dataclass(frozen=True)
class MechanismSpec:
    """Options of a mechanism model.

    Parameters
    ----------
    therapist_level
        Therapist random intercepts (a third level) for every series' latent mean.
    random_paths
        Lagged paths ``(to, from)`` by role that vary between patients, with an unstructured
        covariance. ``None`` picks the design's default (:func:`default_random_paths`): the a
        path (predictor -> mediator; with a second informant its a path too) and the b path
        (mediator -> outcome) with a mediator, none otherwise.
    end_family
        ``"gaussian"``, ``"binary"`` (logit) or ``"auto"`` (binary when the column holds only
        0 and 1) for an end-of-treatment outcome.
    traits
        ``"integrated"``: the latent means, the patients' changes, the therapist parts and every
        missing cell integrated out in closed form (a Kalman filter over the k series,
        :mod:`bayes_alliance.mechanisms.integrated`); ``"sampled"``: all of them parameters
        (:mod:`bayes_alliance.mechanisms.model`); ``"auto"``: integrated unless the end outcome
        is binary (its logit is not Gaussian in the traits).
    random_innovations
        ``True``: each patient's innovation SDs vary, ``sd_e,i = sd_e exp(s u_i)`` per series
        with ``u_i ~ N(0, I)`` (patients who fluctuate more; integrated form only); rows
        ``sd_log_innovation[<series>]``.
    measurement_error
        Roles of the series measured with error (a per-series error SD, separated from the
        state-like part by the dynamics; integrated form only).
    trend
        A linear trend of the predictor over sessions with a random slope per patient: the
        patient's state-like change, regressed on by an end-of-treatment outcome. ``None``: on
        exactly when there is an end-of-treatment outcome.
    baseline
        Patient-level covariate columns of the data (``SeriesData.from_frame(...,
        covariates=...)``), centred over patients, that shift every series' latent mean and, with
        an end-of-treatment outcome, the outcome directly (a binary one through its logit, in
        the sampled form): between-level mediation
        (:mod:`bayes_alliance.mechanisms.baseline`). Either form.
    baseline_level
        ``"patient"``: the baseline acts on the patient part of the latent means (no split at
        the therapists); ``"therapist"``: a therapist characteristic (constant within each
        therapist, centred over therapists) acting on the therapist parts (three levels);
        ``"auto"``: therapist when the model has the therapist level, some therapist has two
        or more patients and every column is constant within every therapist, else patient
        (the joint model's rule, :func:`bayes_alliance.model.covariates.baseline_level`).
    therapist_paths
        Random paths (among ``random_paths``) that also vary between therapists: the patient's
        lag is ``Phi + c_j + d_i`` with ``c_j`` the therapist's deviation (unstructured
        covariance between therapists, rows ``sd_<lag>_therapist``) and ``d_i`` the patient's.
        Needs ``therapist_level``.
    lag_trait_covariance
        The patients' random-path deviations ``d_i`` and their coefficients ``b_i`` (latent
        means, change) share one unstructured covariance (LKJ(1)); ``b_i`` is integrated
        given ``d_i`` (:mod:`bayes_alliance.mechanisms.integrated`). Rows
        ``corr_paths_patient``. Integrated form and random paths needed.
    """

    therapist_level: bool = False
    random_paths: tuple[tuple[str, str], ...] | None = None
    end_family: str = "auto"
    trend: bool | None = None
    traits: str = "auto"
    measurement_error: tuple[str, ...] = ()
    random_innovations: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    baseline: tuple[str, ...] = ()
    therapist_paths: tuple[tuple[str, str], ...] = ()
    lag_trait_covariance: bool = False
    baseline_level: str = "auto"

    def resolved(self, data: SeriesData) -> MechanismSpec:
        """The spec with its defaults settled for this data, checked against it: every
        combination these data do not identify or the model does not support is refused in
        one :class:`~bayes_alliance.mechanisms.identification.NotIdentifiedError` (a
        ``ValueError``) that lists each reason."""
        paths = self.random_paths
        if paths is None:
            paths = default_random_paths(data.roles)
        error = tuple(str(r) for r in self.measurement_error)
        reasons = identification.option_reasons(
            data,
            therapist_level=self.therapist_level,
            random_paths=paths,
            end_family=self.end_family,
            traits=self.traits,
            measurement_error=error,
        )
        family = self.end_family
        if data.end_outcome is not None and family == "auto":
            family = "binary" if data.end_is_binary() else "gaussian"
        trend = self.trend if self.trend is not None else data.end_outcome is not None
        binary_end = data.end_outcome is not None and family == "binary"
        traits = self.traits
        if traits == "auto":
            traits = "sampled" if binary_end else "integrated"
        reasons += identification.form_reasons(
            data,
            binary_end=binary_end,
            traits=traits,
            measurement_error=error,
            random_innovations=self.random_innovations,
        )
        reasons += identification.data_reasons(
            data, therapist_level=self.therapist_level and data.patient_therapist is not None
        )
        baseline = tuple(str(c) for c in self.baseline)
        if baseline:
            if len(set(baseline)) != len(baseline):
                reasons.append(f"baseline names a column twice: {list(baseline)}")
        between = tuple((str(a), str(b)) for a, b in self.therapist_paths)
        if between and not self.therapist_level:
            reasons.append("random lags between therapists need therapist_level=True")
        for pair in between:
            if pair not in paths:
                reasons.append(
                    f"random lag {lag_name(*pair)!r} varies between therapists but not between "
                    "patients: list it among the patient-level random lags too"
                )
        if len(set(between)) != len(between):
            reasons.append("a random lag between therapists is listed twice")
        if self.lag_trait_covariance and not paths:
            reasons.append(
                "a covariance of the random lags with the latent means needs random lags "
                "(--random-lags)"
            )
        if self.lag_trait_covariance and traits != "integrated":
            reasons.append(
                "a covariance of the random lags with the latent means needs traits='integrated'"
            )
        nested = self.therapist_level and data.patient_therapist is not None
        level = self.baseline_level
        if level not in (*BASELINE_LEVELS, "auto"):
            reasons.append(
                f"baseline_level must be 'patient', 'therapist' or 'auto', not {level!r}"
            )
        elif baseline and level == THERAPIST and not nested:
            reasons.append(
                "a therapist-level baseline needs the therapist level (three-level data with a "
                "therapist column, therapist_level=True)"
            )
        if reasons:
            raise identification.NotIdentifiedError(reasons)
        if baseline:
            baseline_matrix(data, baseline)  # named, complete, not constant: the data's error
            level = _baseline_level(data, baseline, level, nested)
            _check_rank(data, baseline, level)
        else:
            level = PATIENT
        return MechanismSpec(
            therapist_level=self.therapist_level,
            random_paths=tuple((str(a), str(b)) for a, b in paths),
            end_family=family,
            trend=bool(trend),
            traits=traits,
            measurement_error=error,
            random_innovations=bool(self.random_innovations),
            extra=dict(self.extra),
            baseline=baseline,
            therapist_paths=between,
            lag_trait_covariance=bool(self.lag_trait_covariance),
            baseline_level=level,
        )

    def design(self, data: SeriesData) -> str:
        """``"mediation_informants"`` (a mediator and a second informant), ``"mediation"``,
        ``"informants"``, ``"two_series"`` or ``"single"`` (the predictor alone)."""
        if data.roles == (PREDICTOR,):
            return "single"
        if MEDIATOR in data.roles and SECOND_PREDICTOR in data.roles:
            return MEDIATION_INFORMANTS
        if MEDIATOR in data.roles:
            return "mediation"
        if SECOND_PREDICTOR in data.roles:
            return "informants"
        return "two_series"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["random_paths"] = [list(p) for p in self.random_paths or ()]
        d["measurement_error"] = list(self.measurement_error)
        d["baseline"] = list(self.baseline)
        d["therapist_paths"] = [list(p) for p in self.therapist_paths]
        d["kind"] = "mechanism"
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MechanismSpec:
        return cls(
            therapist_level=bool(d["therapist_level"]),
            random_paths=tuple((str(p[0]), str(p[1])) for p in d["random_paths"]),
            end_family=str(d["end_family"]),
            trend=d["trend"],
            # files written before the integrated form sampled their traits
            traits=str(d.get("traits", "sampled")),
            measurement_error=tuple(str(r) for r in d.get("measurement_error", ())),
            random_innovations=bool(d.get("random_innovations", False)),
            extra=dict(d.get("extra", {})),
            baseline=tuple(str(c) for c in d.get("baseline", ())),  # older files: none
            therapist_paths=tuple((str(p[0]), str(p[1])) for p in d.get("therapist_paths", ())),
            lag_trait_covariance=bool(d.get("lag_trait_covariance", False)),
            # files written before the therapist level took a patient-level baseline
            baseline_level=str(d.get("baseline_level", PATIENT)),
        )


def _check_rank(data: SeriesData, columns: tuple[str, ...], level: str) -> None:
    """Refuse baseline columns whose centred values are linearly dependent over the units of
    their level (one a combination of the others, or more columns than units less one): their
    paths are then not identified, in either form."""
    z = baseline_values(data, columns, level)
    if np.linalg.matrix_rank(z) < len(columns):
        units = "therapists" if level == THERAPIST else "patients"
        raise identification.NotIdentifiedError(
            [
                f"the baseline columns {list(columns)} are linearly dependent over the "
                f"{units} (a column is a combination of the others, or there are too few "
                f"{units}): their paths are not identified; drop a column"
            ]
        )


def _baseline_level(data: SeriesData, columns: tuple[str, ...], level: str, nested: bool) -> str:
    """The baseline's level for these data (``MechanismSpec.baseline_level``), checked: a
    therapist-level baseline's values by :func:`therapist_matrix` (constant within each
    therapist, naming the column and the therapist where not)."""
    if level == THERAPIST:
        therapist_matrix(data, columns)
        return THERAPIST
    if level == PATIENT or not nested:
        return PATIENT
    # "auto": a column constant within therapists only because each has one patient says
    # nothing about its level; such data keep the patient level.
    assert data.patient_therapist is not None
    shared = np.bincount(data.patient_therapist).max() > 1
    if shared and not varying_within_therapist(data, columns):
        therapist_matrix(data, columns)  # not constant over therapists either
        return THERAPIST
    return PATIENT


__all__ = [
    "END_FAMILIES",
    "LAG_NAMES",
    "MEDIATION_INFORMANTS",
    "TRAIT_FORMS",
    "MechanismSpec",
    "default_random_paths",
    "lag_levels",
    "lag_name",
    "lag_pairs",
    "path_name",
    "random_lag_row",
]
