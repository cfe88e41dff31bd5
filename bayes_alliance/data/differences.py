"""How two session data sets differ, in words: the column roles, the patients and therapists,
the sessions, the values of the series and of the covariates. Used where two results must have
been fitted to the same data (:func:`bayes_alliance.analysis.comparison.compare`), so that a
refusal names the difference instead of two data hashes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_alliance.data.session_data import SessionData

SHOWN = 5  # ids or cells named per difference; the rest are counted


def _listing(items: list[str]) -> str:
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def _ids(values: object) -> list[str]:
    return [str(x) for x in np.asarray(values, dtype=object).tolist()]


def _roles(a: SessionData, b: SessionData, names: tuple[str, str]) -> list[str]:
    out = []
    for role in ("patient", "session", "predictor", "outcome", "therapist"):
        ca, cb = getattr(a.roles, role), getattr(b.roles, role)
        if ca != cb:
            out.append(f"the {role} column is {ca!r} in {names[0]} but {cb!r} in {names[1]}")
    ca, cb = list(a.covariates.columns), list(b.covariates.columns)
    if ca != cb:
        only_a = [c for c in ca if c not in cb]
        only_b = [c for c in cb if c not in ca]
        words = []
        if only_a:
            words.append(f"{only_a} only in {names[0]}")
        if only_b:
            words.append(f"{only_b} only in {names[1]}")
        out.append("the covariates differ: " + ("; ".join(words) or f"order {ca} vs {cb}"))
    return out


def _units(a: SessionData, b: SessionData, names: tuple[str, str]) -> list[str]:
    out = []
    for what, ua, ub in (
        ("patients", a.patients, b.patients),
        ("therapists", a.therapists, b.therapists),
    ):
        ia = _ids(ua) if ua is not None else []
        ib = _ids(ub) if ub is not None else []
        only_a = [p for p in ia if p not in set(ib)]
        only_b = [p for p in ib if p not in set(ia)]
        if only_a:
            out.append(f"{what} only in {names[0]}: {_listing(only_a)}")
        if only_b:
            out.append(f"{what} only in {names[1]}: {_listing(only_b)}")
    sa, sb = a.sessions, b.sessions
    if len(sa) != len(sb) or (sa != sb).any():
        out.append(
            f"the sessions run {sa[0]}-{sa[-1]} in {names[0]} but {sb[0]}-{sb[-1]} in {names[1]}"
        )
    return out


def _cells(a: SessionData, b: SessionData, names: tuple[str, str]) -> list[str]:
    """Differing cells of the shared patients and sessions: values, presence, therapist."""
    pats = [p for p in _ids(a.patients) if p in set(_ids(b.patients))]
    sess = np.intersect1d(a.sessions, b.sessions)
    ra = pd.Index(_ids(a.patients)).get_indexer(pd.Index(pats))
    rb = pd.Index(_ids(b.patients)).get_indexer(pd.Index(pats))
    sa = np.searchsorted(a.sessions, sess)
    sb = np.searchsorted(b.sessions, sess)
    out = []
    grids = (
        (f"{a.roles.predictor!r} (predictor)", a.x, b.x),
        (f"{a.roles.outcome!r} (outcome)", a.y, b.y),
    )
    for what, ga, gb in grids:
        va, vb = ga[np.ix_(ra, sa)], gb[np.ix_(rb, sb)]
        differ = ~((va == vb) | (np.isnan(va) & np.isnan(vb)))
        if differ.any():
            at = np.argwhere(differ)
            cells = [
                f"patient {pats[i]} session {sess[j]}: {va[i, j]:g} vs {vb[i, j]:g}"
                for i, j in at[:SHOWN]
            ]
            more = len(at) - SHOWN
            out.append(
                f"{len(at)} value(s) of {what} differ ({names[0]} vs {names[1]}): "
                + "; ".join(cells)
                + (f" and {more} more" if more > 0 else "")
            )
    rows = np.argwhere(a.present[np.ix_(ra, sa)] != b.present[np.ix_(rb, sb)])
    if len(rows):
        out.append(
            f"{len(rows)} session row(s) are in one data set only, e.g. "
            + _listing([f"patient {pats[i]} session {sess[j]}" for i, j in rows])
        )
    if (
        a.therapists is not None
        and b.therapists is not None
        and a.patient_therapist is not None
        and b.patient_therapist is not None
    ):
        ta = a.therapists[a.patient_therapist[ra]]
        tb = b.therapists[b.patient_therapist[rb]]
        moved = [f"patient {p}: {x} vs {y}" for p, x, y in zip(pats, ta, tb, strict=True) if x != y]
        if moved:
            out.append(f"{len(moved)} patient(s) have another therapist: {_listing(moved)}")
    for c in a.covariates.columns:
        if c not in b.covariates.columns:
            continue
        va = a.covariates[c].to_numpy(dtype=float)[ra]
        vb = b.covariates[c].to_numpy(dtype=float)[rb]
        differ = ~((va == vb) | (np.isnan(va) & np.isnan(vb)))
        if differ.any():
            cells = [f"patient {pats[i]}: {va[i]:g} vs {vb[i]:g}" for i in np.flatnonzero(differ)]
            out.append(
                f"{len(cells)} value(s) of covariate {c!r} differ ({names[0]} vs {names[1]}): "
                + _listing(cells)
            )
    return out


def data_differences(
    a: SessionData, b: SessionData, names: tuple[str, str] = ("the first", "the second")
) -> list[str]:
    """The differences between two data sets, one sentence each: column roles (a column of
    another name, covariates in one only), patients and therapists in one only, the session
    range, then for the shared patients and sessions the differing values of the predictor,
    the outcome and the covariates, rows in one only and patients with another therapist
    (up to :data:`SHOWN` named per kind, the rest counted). Empty when the data agree on all
    of these."""
    out = _roles(a, b, names) + _units(a, b, names)
    if a.roles.crossed != b.roles.crossed:
        out.append(
            f"crossed therapists: {a.roles.crossed} in {names[0]}, {b.roles.crossed} in {names[1]}"
        )
    return out + _cells(a, b, names)


__all__ = ["SHOWN", "data_differences"]
