"""Which column of a long table plays which part: :class:`Roles`, the one list of column
roles (the option table :data:`bayes_alliance.spec.options.ROLES` gives each its flag, spec-file
key and help text)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Roles:
    """Which column plays which part. ``therapist`` is None for two-level data."""

    patient: str
    session: str
    predictor: str
    outcome: str
    therapist: str | None = None
    covariates: tuple[str, ...] = ()
    crossed: bool = False  # a patient may see several therapists
    # Mechanism models (bayes_alliance.mechanisms.fit): a third series, or a patient-level outcome.
    mediator: str | None = None
    second_predictor: str | None = None
    end_outcome: str | None = None
    # Further session-level columns read as indicators of the predictor or the outcome
    # (ModelSpec.predictor_indicators / outcome_indicators; the variables' own columns are the
    # marker indicators and are not repeated here).
    indicators: tuple[str, ...] = ()
    # A numeric time of each session (continuous time, ModelSpec.time_model = "continuous"):
    # increasing within a patient, in the model's time unit; the session column orders the rows.
    time: str | None = None

    @property
    def mechanism(self) -> bool:
        """Whether these roles call for a mechanism model rather than the main model."""
        return any(c is not None for c in (self.mediator, self.second_predictor, self.end_outcome))

    @property
    def variables(self) -> tuple[str, str]:
        return (self.predictor, self.outcome)

    def columns(self) -> list[str]:
        cols = [self.patient, self.session, self.predictor, self.outcome, *self.indicators]
        if self.therapist is not None:
            cols.append(self.therapist)
        if self.time is not None:
            cols.append(self.time)
        return cols + list(self.covariates)


__all__ = ["Roles"]
