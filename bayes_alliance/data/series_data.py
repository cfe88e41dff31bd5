"""Several session-level series of the same patients on one grid: the data of the mechanism
models (a mediator series, a second informant's rating), or the predictor alone
(:meth:`SeriesData.single`), and an optional end-of-treatment outcome.

The two-series :class:`~bayes_alliance.data.session_data.SessionData` does all the checking: every series
beside the outcome is validated as a predictor of the same table, so a bad value is reported
with its column and file line exactly as for the main model, and the grids agree by
construction (same patients, sessions and therapists).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.data.missing_codes import apply_missing_codes
from bayes_alliance.data.roles import Roles
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.data.validate import DataValidationError, DataWarning, Problem, check_frame

# Roles of the series (the vocabulary's), in model order: the outcome is always last.
PREDICTOR = vocab.PREDICTOR
MEDIATOR = vocab.MEDIATOR
SECOND_PREDICTOR = vocab.SECOND_PREDICTOR
OUTCOME = vocab.OUTCOME
END_OUTCOME = vocab.END_OUTCOME
# The stand-in outcome column of a single series' validation (SeriesData.single).
NO_OUTCOME = "__no_outcome__"


@dataclass(frozen=True)
class SeriesData:
    """k session-level series per patient on a patient x session grid.

    Attributes
    ----------
    roles
        Role of each series, outcome last (e.g. ``("predictor", "mediator", "outcome")``).
    columns
        The table's column of each series.
    z
        Float array (patients, sessions, k), NaN where a value is missing.
    base
        The validated two-series data of the predictor and the outcome (ids, sessions,
        therapists, first and last rows, the cleaned table); for a single series its ``y``
        is all missing.
    end_outcome
        One value per patient (NaN where not measured) or None; its column in ``end_column``.
    """

    roles: tuple[str, ...]
    columns: tuple[str, ...]
    z: np.ndarray
    base: SessionData
    end_outcome: np.ndarray | None = None
    end_column: str | None = None

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        patient: str,
        session: str,
        predictor: str,
        outcome: str,
        mediator: str | None = None,
        second_predictor: str | None = None,
        therapist: str | None = None,
        end_outcome: str | None = None,
        covariates: Sequence[str] = (),
        missing_codes: object = None,
    ) -> SeriesData:
        """Validate a long table with two, three or four session-level series.

        Parameters
        ----------
        df
            One row per (patient, session).
        patient, session, predictor, outcome, therapist
            Column names, as for :meth:`SessionData.from_frame`.
        mediator
            A session-level series between predictor and outcome (within-level mediation).
        second_predictor
            The other informant's rating of the predictor (e.g. therapist-rated alliance).
            With a mediator too, the series are (predictor, second_predictor, mediator,
            outcome): each informant's a path to the mediator in one model.
        end_outcome
            A patient-level column measured once (post-treatment symptoms, or dropout coded
            0/1), constant within patient; NaN where not measured.
        covariates
            Further patient-level columns (constant within patient), read and checked as the
            end outcome is, into ``base.covariates``: the baseline characteristics of a
            between-level mediation (``MechanismSpec.baseline``).
        missing_codes
            Values that mean "missing", set to missing first, as for
            :meth:`SessionData.from_frame`.

        Raises
        ------
        DataValidationError
            Every problem found, each naming its column and rows or ids.
        """
        df, _ = apply_missing_codes(df, missing_codes, keep=(patient, session, therapist))
        read = [end_outcome] if end_outcome is not None else []
        read += [c for c in covariates if c != end_outcome]
        base = SessionData.from_frame(
            df,
            patient=patient,
            session=session,
            predictor=predictor,
            outcome=outcome,
            therapist=therapist,
            covariates=read,
        )
        roles: list[str] = [PREDICTOR]
        columns: list[str] = [predictor]
        series = [base.x]
        # Model order (predictor, second_predictor, mediator, outcome): the informants first,
        # the mediator between them and the outcome.
        extras = [(SECOND_PREDICTOR, second_predictor), (MEDIATOR, mediator)]
        taken = {patient, session, predictor, outcome, therapist, end_outcome}
        problems: list[Problem] = []
        for role, extra in extras:
            if extra is None:
                continue
            if extra in taken:
                problems.append(Problem("column already has another role", column=extra))
                continue
            taken.add(extra)
            try:
                other = SessionData.from_frame(
                    df,
                    patient=patient,
                    session=session,
                    predictor=extra,
                    outcome=outcome,
                    therapist=therapist,
                )
            except DataValidationError as exc:  # both extra columns' problems in one message
                problems += [p for p in exc.problems if p not in problems]
                continue
            roles.append(role)
            columns.append(extra)
            series.append(other.x)
        if problems:
            raise DataValidationError(problems)
        roles.append(OUTCOME)
        columns.append(outcome)
        series.append(base.y)
        end = None
        if end_outcome is not None:
            end = base.covariates[end_outcome].to_numpy(dtype=float)
            if np.isfinite(end).sum() < 3:
                raise DataValidationError(
                    [
                        Problem(
                            "end-of-treatment outcome observed for fewer than 3 patients",
                            column=end_outcome,
                        )
                    ]
                )
        return cls(
            roles=tuple(roles),
            columns=tuple(columns),
            z=np.stack(series, axis=-1),
            base=base,
            end_outcome=end,
            end_column=end_outcome,
        )

    @classmethod
    def single(
        cls,
        df: pd.DataFrame,
        *,
        patient: str,
        session: str,
        predictor: str,
        therapist: str | None = None,
        end_outcome: str | None = None,
        covariates: Sequence[str] = (),
        missing_codes: object = None,
    ) -> SeriesData:
        """Validate a long table with one session-level series (the predictor alone, e.g.
        alliance dynamics without symptoms; roles ``("predictor",)``).

        The table goes through the same rules as :meth:`from_frame` (a bad value is named by
        its column and file line, an id by its column and value): the role columns first, then
        every other rule with a stand-in outcome column that is present exactly where the
        predictor is, so that it raises nothing of its own (an echo of the predictor's problem,
        all missing or constant, is dropped) and the patients' observed-session counts are
        the predictor's. ``base.y`` is all missing.

        Parameters
        ----------
        df
            One row per (patient, session).
        patient, session, predictor, therapist
            Column names, as for :meth:`SessionData.from_frame`.
        end_outcome
            A patient-level column measured once, as for :meth:`from_frame`: regressed on the
            predictor's trait and each patient's change.
        covariates
            Further patient-level columns (baseline characteristics), as for
            :meth:`from_frame`.
        missing_codes
            As for :meth:`from_frame`.

        Raises
        ------
        DataValidationError
            Every problem found, each naming its column and rows or ids.
        """
        df, _ = apply_missing_codes(df, missing_codes, keep=(patient, session, therapist))
        roles = Roles(
            patient=patient,
            session=session,
            predictor=predictor,
            outcome=predictor,
            therapist=therapist,
            covariates=((end_outcome,) if end_outcome is not None else ()) + tuple(covariates),
        )
        # First the columns alone (missing, doubled, reserved: the checks stop there), with the
        # predictor in the outcome's place so that the messages list the table's own columns;
        # the predictor's second role is this call's, not the user's.
        ours = Problem("column is given more than one role", column=predictor)
        given = (patient, session, therapist, end_outcome, *covariates)
        columns = [p for p in check_frame(df, roles).problems if p != ours or predictor in given]
        if columns:
            raise DataValidationError(columns)
        stand_in = NO_OUTCOME
        while stand_in in df.columns:
            stand_in += "_"
        work = df.copy()
        present = df[predictor].notna().to_numpy()
        work[stand_in] = np.where(present, np.arange(len(df), dtype=float), np.nan)
        roles = replace(roles, outcome=stand_in)
        checked = check_frame(work, roles)
        problems = [p for p in checked.problems if p.column != stand_in]
        if problems or checked.frame is None:
            raise DataValidationError(problems or checked.problems)
        warns = tuple(w for w in checked.warnings if repr(stand_in) not in w)
        for msg in warns:
            warnings.warn(msg, DataWarning, stacklevel=2)
        base = SessionData._from_clean(checked.frame, roles, warns)
        base = replace(
            base, y=np.full_like(base.x, np.nan), frame=base.frame.drop(columns=stand_in)
        )
        return cls(
            roles=(PREDICTOR,),
            columns=(predictor,),
            z=base.x[:, :, None].copy(),
            base=base,
            end_outcome=_end_values(base, end_outcome),
            end_column=end_outcome,
        )

    @property
    def k(self) -> int:
        return len(self.roles)

    @property
    def n_patients(self) -> int:
        return self.base.n_patients

    @property
    def n_sessions(self) -> int:
        return self.base.n_sessions

    @property
    def first(self) -> np.ndarray:
        return self.base.first

    @property
    def last(self) -> np.ndarray:
        return self.base.last

    @property
    def patient_therapist(self) -> np.ndarray | None:
        return self.base.patient_therapist

    def index(self, role: str) -> int:
        """Position of a role among the series."""
        if role not in self.roles:
            raise ValueError(f"no {role!r} series in this data (roles: {', '.join(self.roles)})")
        return self.roles.index(role)

    def end_is_binary(self) -> bool:
        """Whether the end-of-treatment outcome holds only 0 and 1."""
        if self.end_outcome is None:
            return False
        seen = self.end_outcome[np.isfinite(self.end_outcome)]
        return bool(np.isin(seen, (0.0, 1.0)).all())

    @property
    def data_hash(self) -> str:
        h = hashlib.sha256()
        h.update(self.base.data_hash.encode())
        h.update(np.ascontiguousarray(self.z).tobytes())
        if self.end_outcome is not None:
            h.update(np.ascontiguousarray(self.end_outcome).tobytes())
        h.update(repr((self.roles, self.columns, self.end_column)).encode())
        return h.hexdigest()

    def coords(self) -> dict[str, list[object]]:
        out = {k: list(v) for k, v in self.base.coords.items() if k in ("patient", "therapist")}
        out["session"] = [int(s) for s in self.base.sessions]
        out[vocab.SERIES] = list(self.roles)
        return out


def _end_values(base: SessionData, column: str | None) -> np.ndarray | None:
    """The end-of-treatment outcome per patient from the validated covariates (None without
    one); observed for at least 3 patients."""
    if column is None:
        return None
    end = base.covariates[column].to_numpy(dtype=float)
    if np.isfinite(end).sum() < 3:
        raise DataValidationError(
            [Problem("end-of-treatment outcome observed for fewer than 3 patients", column=column)]
        )
    return end


def grid_cells(data: SeriesData) -> tuple[np.ndarray, np.ndarray]:
    """The cells inside each patient's series (first to last row) and which of their entries
    are missing: ``inside`` (patients, sessions) bool and ``missing`` (patients, sessions, k)
    bool, the latter only inside a series."""
    t = np.arange(data.n_sessions)
    inside = (t[None, :] >= data.first[:, None]) & (t[None, :] <= data.last[:, None])
    missing = ~np.isfinite(data.z) & inside[:, :, None]
    return inside, missing


__all__: Sequence[str] = ["SeriesData", "grid_cells"]
