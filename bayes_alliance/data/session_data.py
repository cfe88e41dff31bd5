"""Validated session data on the patient x session grid that every model uses.

A long table (one row per observed session) becomes a dense grid with one row per patient and one
column per session number. Session numbers, not row order, define lags: a skipped session is a
missing cell of the grid, never a shorter lag (docs/methods.md, section 'The decomposition').
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.core.html_table import html_table
from bayes_alliance.data.describe import Descriptives, describe, design_counts
from bayes_alliance.data.missing_codes import apply_missing_codes
from bayes_alliance.data.roles import Roles
from bayes_alliance.data.validate import DataValidationError, DataWarning, check_frame

__all__ = ["DataValidationError", "DataWarning", "SessionData"]


def _sorted_unique(values: pd.Series) -> np.ndarray:
    uniq = pd.unique(values)
    try:
        return np.asarray(sorted(uniq.tolist()), dtype=object)
    except TypeError:  # mixed types: keep first-seen order
        return np.asarray(uniq.tolist(), dtype=object)


@dataclass(frozen=True, eq=False)
class SessionData:
    """Session-by-session data of patients (optionally nested in therapists) on a dense grid.

    Build it with :meth:`from_frame`; do not call the constructor directly.

    Attributes
    ----------
    roles
        The column roles it was built with.
    patients, therapists
        Coordinate values (original ids, sorted). ``therapists`` is None for two-level data.
    sessions
        Session numbers of the grid columns: every integer from the smallest to the largest
        observed session number.
    x, y
        Float arrays of shape (n_patients, n_sessions): predictor and outcome, NaN where missing.
    present
        Bool array (n_patients, n_sessions): the table has a row for this cell.
    first, last
        Grid column index of each patient's first and last row.
    patient_therapist
        Therapist code (index into ``therapists``) of each patient, when patients are nested.
    cell_therapist
        Therapist code of each present cell (-1 elsewhere); differs within a patient only for
        crossed data.
    covariates
        Patient-level covariates, one row per patient (float, NaN when missing).
    frame
        The cleaned long table with integer codes ``patient_code``, ``session_code`` and
        ``therapist_code`` added.
    times
        With a time column (``roles.time``; continuous time): float array (n_patients,
        n_sessions) of each cell's time, NaN where no row. The grid's columns are then each
        patient's 1st, 2nd, ... session in session order (``sessions`` = 1..the most sessions
        of a patient): in continuous time a skipped session is a longer interval, not an empty
        cell.
    """

    roles: Roles
    patients: np.ndarray
    therapists: np.ndarray | None
    sessions: np.ndarray
    x: np.ndarray
    y: np.ndarray
    present: np.ndarray
    first: np.ndarray
    last: np.ndarray
    patient_therapist: np.ndarray | None
    cell_therapist: np.ndarray
    covariates: pd.DataFrame
    frame: pd.DataFrame
    warnings: tuple[str, ...] = field(default=())
    times: np.ndarray | None = None

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        patient: str,
        session: str,
        predictor: str,
        outcome: str,
        therapist: str | None = None,
        covariates: Sequence[str] = (),
        crossed: bool = False,
        indicators: Sequence[str] = (),
        time: str | None = None,
        missing_codes: object = None,
    ) -> SessionData:
        """Validate a long table and build the grid.

        Parameters
        ----------
        df
            One row per (patient, session). Ids may be integers or strings (pandas ``str`` or
            nullable dtypes work); values may be nullable floats. A table from
            :func:`bayes_alliance.data.readers.read_table` has its rows reported by the file's
            line (row, case) numbers.
        patient, session, predictor, outcome, therapist
            Column names. ``therapist=None`` gives two-level data.
        covariates
            Patient-level columns (constant within patient), e.g. moderators of the state effect.
        crossed
            Allow a patient to see more than one therapist.
        time
            A numeric time of each session (continuous time), strictly increasing within a
            patient in session order; the grid's columns are then each patient's sessions in
            order (:attr:`times`).
        indicators
            Further session-level columns to keep and check (numbers): indicators of the
            predictor or the outcome besides their own columns (``ModelSpec.predictor_indicators``).
        missing_codes
            Values that mean "missing", set to missing before validation: a number or a list
            (every column but the id, session and time columns) or a mapping of column names to
            numbers (``{"symptoms": [-99, 999]}``); see
            :class:`~bayes_alliance.data.missing_codes.MissingCodes`.

        Raises
        ------
        DataValidationError
            Listing every problem found, each with its column and rows or ids.

        Warns
        -----
        DataWarning
            Values shaped like missing-value codes (-99, 999, ...) far outside the rest of
            their column; session numbers far from all others (they widen the grid); constant
            columns; patients with fewer than 3 observed sessions; fewer than 10 therapists.
        """
        roles = Roles(
            patient=patient,
            session=session,
            predictor=predictor,
            outcome=outcome,
            therapist=therapist,
            covariates=tuple(covariates),
            crossed=crossed,
            indicators=tuple(c for c in dict.fromkeys(indicators) if c not in (predictor, outcome)),
            time=time,
        )
        df, _ = apply_missing_codes(df, missing_codes, keep=(patient, session, therapist, time))
        checked = check_frame(df, roles)
        if checked.problems:
            raise DataValidationError(checked.problems)
        assert checked.frame is not None
        for msg in checked.warnings:
            warnings.warn(msg, DataWarning, stacklevel=2)
        return cls._from_clean(checked.frame, roles, tuple(checked.warnings))

    @classmethod
    def from_roles(
        cls, df: pd.DataFrame, roles: Roles, *, missing_codes: object = None
    ) -> SessionData:
        """:meth:`from_frame` with the column roles given as one :class:`Roles` object."""
        return cls.from_frame(
            df,
            patient=roles.patient,
            session=roles.session,
            predictor=roles.predictor,
            outcome=roles.outcome,
            therapist=roles.therapist,
            covariates=roles.covariates,
            crossed=roles.crossed,
            indicators=roles.indicators,
            time=roles.time,
            missing_codes=missing_codes,
        )

    @classmethod
    def _from_clean(cls, clean: pd.DataFrame, roles: Roles, warns: tuple[str, ...]) -> SessionData:
        frame = clean.reset_index(drop=True).copy()
        patients = _sorted_unique(frame[roles.patient])
        p_code = pd.Index(patients).get_indexer(frame[roles.patient].astype(object))
        if roles.time is None:
            s_min, s_max = int(frame[roles.session].min()), int(frame[roles.session].max())
            sessions = np.arange(s_min, s_max + 1, dtype=np.int64)
            s_code = frame[roles.session].to_numpy(dtype=np.int64) - s_min
        else:  # each patient's sessions in order, one grid column each
            order = frame.assign(_p=p_code).sort_values(["_p", roles.session], kind="stable")
            s_code = np.empty(len(frame), dtype=np.int64)
            s_code[order.index.to_numpy()] = order.groupby("_p", sort=False).cumcount()
            sessions = np.arange(1, int(s_code.max()) + 2, dtype=np.int64)
        frame["patient_code"] = p_code
        frame["session_code"] = s_code
        frame = frame.sort_values(["patient_code", "session_code"], kind="stable").reset_index(
            drop=True
        )
        p_code = frame["patient_code"].to_numpy()
        s_code = frame["session_code"].to_numpy()

        shape = (len(patients), len(sessions))
        x = np.full(shape, np.nan)
        y = np.full(shape, np.nan)
        present = np.zeros(shape, dtype=bool)
        x[p_code, s_code] = frame[roles.predictor].to_numpy(dtype=float)
        y[p_code, s_code] = frame[roles.outcome].to_numpy(dtype=float)
        present[p_code, s_code] = True
        times = None
        if roles.time is not None:
            times = np.full(shape, np.nan)
            times[p_code, s_code] = frame[roles.time].to_numpy(dtype=float)
        first = np.argmax(present, axis=1)
        last = shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)

        therapists = None
        patient_therapist = None
        cell_therapist = np.full(shape, -1, dtype=np.int64)
        if roles.therapist is not None:
            therapists = _sorted_unique(frame[roles.therapist])
            t_code = pd.Index(therapists).get_indexer(frame[roles.therapist].astype(object))
            frame["therapist_code"] = t_code
            cell_therapist[p_code, s_code] = t_code
            if not roles.crossed:
                patient_therapist = np.zeros(len(patients), dtype=np.int64)
                patient_therapist[p_code] = t_code

        cov = pd.DataFrame(index=pd.Index(patients, name=vocab.PATIENT))
        for c in roles.covariates:
            per = frame.groupby("patient_code", sort=True)[c].first()
            cov[c] = per.reindex(range(len(patients))).to_numpy(dtype=float)
        return cls(
            roles=roles,
            patients=patients,
            therapists=therapists,
            sessions=sessions,
            x=x,
            y=y,
            present=present,
            first=first,
            last=last,
            patient_therapist=patient_therapist,
            cell_therapist=cell_therapist,
            covariates=cov,
            frame=frame,
            warnings=warns,
            times=times,
        )

    # ------------------------------------------------------------------ views
    def __repr__(self) -> str:
        return data_text(self)

    def _repr_html_(self) -> str:
        return data_html(self)

    @property
    def n_patients(self) -> int:
        return len(self.patients)

    @property
    def n_therapists(self) -> int:
        return 0 if self.therapists is None else len(self.therapists)

    @property
    def n_sessions(self) -> int:
        """Number of grid columns (session numbers from first to last)."""
        return len(self.sessions)

    @property
    def observed_x(self) -> np.ndarray:
        return ~np.isnan(self.x)

    @property
    def observed_y(self) -> np.ndarray:
        return ~np.isnan(self.y)

    @property
    def in_series(self) -> np.ndarray:
        """Bool grid: the cell lies between the patient's first and last row (inclusive)."""
        cols = np.arange(self.n_sessions)
        return (cols[None, :] >= self.first[:, None]) & (cols[None, :] <= self.last[:, None])

    @property
    def coords(self) -> dict[str, list[object]]:
        """Coordinates for PyMC / xarray, keyed by the vocabulary's dim names."""
        out: dict[str, list[object]] = {
            vocab.PATIENT: self.patients.tolist(),
            vocab.SESSION: self.sessions.tolist(),
        }
        if self.therapists is not None:
            out[vocab.THERAPIST] = self.therapists.tolist()
        return out

    def variable(self, which: str) -> np.ndarray:
        """Grid of ``"predictor"`` (x) or ``"outcome"`` (y)."""
        vocab.check_names([which], vocab.VARIABLES, "variable")
        return self.x if which == vocab.PREDICTOR else self.y

    def lagged(self, which: str, lag: int = 1) -> np.ndarray:
        """Grid of the value ``lag`` session numbers earlier (NaN where that session is missing)."""
        g = self.variable(which)
        out = np.full_like(g, np.nan)
        if lag < g.shape[1]:
            out[:, lag:] = g[:, : g.shape[1] - lag]
        return out

    def to_long(self) -> pd.DataFrame:
        """Long table of present cells with standard column names and the grid codes."""
        r = self.roles
        cols = {
            vocab.PATIENT: self.frame[r.patient].to_numpy(dtype=object),
            vocab.SESSION: self.frame[r.session].to_numpy(),
            vocab.PREDICTOR: self.frame[r.predictor].to_numpy(dtype=float),
            vocab.OUTCOME: self.frame[r.outcome].to_numpy(dtype=float),
            "patient_code": self.frame["patient_code"].to_numpy(),
            "session_code": self.frame["session_code"].to_numpy(),
        }
        if r.therapist is not None:
            cols[vocab.THERAPIST] = self.frame[r.therapist].to_numpy(dtype=object)
            cols["therapist_code"] = self.frame["therapist_code"].to_numpy()
        return pd.DataFrame(cols)

    def describe(self) -> Descriptives:
        """The descriptives of a methods section: design counts, and per variable observed
        cells, missingness, mean, SD and ICCs (patient and therapist level, from the nested
        random-effects ANOVA); see :mod:`bayes_alliance.data.describe`. ``d["n_rows"]`` reads
        the plain counts (:attr:`Descriptives.counts`)."""
        return describe(self)

    @property
    def data_hash(self) -> str:
        """SHA-256 of the grid, ids and covariates: identifies the data a result was fitted to."""
        h = hashlib.sha256()
        for arr in (self.x, self.y, self.present, self.sessions, self.cell_therapist):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(repr(self.patients.tolist()).encode())
        h.update(repr(None if self.therapists is None else self.therapists.tolist()).encode())
        h.update(pd.util.hash_pandas_object(self.covariates, index=False).to_numpy().tobytes())
        h.update(repr(self.roles).encode())
        if self.times is not None:
            h.update(np.ascontiguousarray(self.times).tobytes())
        return h.hexdigest()


# Views for the console and notebooks: shape, roles, warnings and the first rows.
def data_line(data: SessionData) -> str:
    """One line on the data's shape: patients, therapists, sessions, missing cells."""
    d = design_counts(data)
    levels = f"{d['n_patients']} patients"
    if data.therapists is not None:
        levels += f" in {d['n_therapists']} therapists"
    miss = max(d["missing_predictor_share"], d["missing_outcome_share"])
    return (
        f"{levels}, {d['n_rows']} sessions (sessions {d['first_session']}-{d['last_session']}, "
        f"median {d['sessions_per_patient_median']:g} per patient), "
        f"{miss:.1%} of in-series cells missing"
    )


def data_text(data: SessionData) -> str:
    """A few lines: the data's shape, roles and warnings (``repr``)."""
    r = data.roles
    roles = f"patient={r.patient!r}, session={r.session!r}, predictor={r.predictor!r}, "
    roles += f"outcome={r.outcome!r}"
    if r.therapist:
        roles += f", therapist={r.therapist!r}"
    if r.covariates:
        roles += f", covariates={list(r.covariates)!r}"
    lines = [f"SessionData: {data_line(data)}", f"  roles: {roles}"]
    lines += [f"  warning: {w}" for w in data.warnings]
    return "\n".join(lines)


def data_html(data: SessionData) -> str:
    """The shape, warnings and first five rows as HTML (``_repr_html_``)."""
    head = data.to_long().head(5)
    rows = [[str(v) for v in row] for row in head.itertuples(index=False)]
    warn = "".join(f"<br>warning: {escape(w)}" for w in data.warnings)
    return (
        '<div style="font-family:system-ui,sans-serif;font-size:13px">'
        f"<b>SessionData</b>: {escape(data_line(data))}{warn}"
        f"{html_table([str(c) for c in head.columns], rows)}<small>first 5 rows of "
        ".to_long()</small></div>"
    )
