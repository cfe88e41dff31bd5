"""What a saved mechanism fit records beside its draws: the long table the model saw, the
series rebuilt from it, and the provenance entries of the mechanism models."""

from __future__ import annotations

import warnings
from typing import Any

import xarray as xr

from bayes_alliance.data.series_data import (
    MEDIATOR,
    OUTCOME,
    PREDICTOR,
    SECOND_PREDICTOR,
    SeriesData,
)
from bayes_alliance.mechanisms.priors import PRIOR_RULES


def series_table(data: SeriesData) -> xr.Dataset:
    """The long table the model saw (one row per present cell), with every series' column:
    the file's ``session_data`` group."""
    base = data.base
    frame = base.frame
    p, s = frame["patient_code"].to_numpy(), frame["session_code"].to_numpy()
    ds = xr.Dataset()
    ds[base.roles.patient] = ("row", frame[base.roles.patient].astype(str).to_numpy(dtype=str))
    ds[base.roles.session] = ("row", frame[base.roles.session].to_numpy(dtype=float))
    if base.roles.therapist is not None:
        ther = frame[base.roles.therapist].astype(str).to_numpy(dtype=str)
        ds[base.roles.therapist] = ("row", ther)
    for j, col in enumerate(data.columns):
        ds[col] = ("row", data.z[p, s, j])
    if data.end_outcome is not None and data.end_column is not None:
        ds[data.end_column] = ("row", data.end_outcome[p])
    for col in base.covariates.columns:  # the baseline columns (on every patient's rows)
        if col != data.end_column:
            ds[col] = ("row", base.covariates[col].to_numpy(dtype=float)[p])
    return ds


def series_data_from_table(table: xr.Dataset, prov: dict[str, Any]) -> SeriesData:
    """The series rebuilt (and re-validated) from the file's ``session_data`` group and the
    roles and series named in the provenance."""
    roles = prov["roles"]
    series = prov["series"]
    df = table.to_dataframe().reset_index(drop=True)
    df[roles["session"]] = df[roles["session"]].astype("int64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if OUTCOME not in series:  # the predictor alone
            return SeriesData.single(
                df,
                patient=roles["patient"],
                session=roles["session"],
                therapist=roles["therapist"],
                predictor=series[PREDICTOR],
                end_outcome=prov.get("end_outcome"),
            )
        return SeriesData.from_frame(
            df,
            patient=roles["patient"],
            session=roles["session"],
            therapist=roles["therapist"],
            predictor=series[PREDICTOR],
            outcome=series[OUTCOME],
            mediator=series.get(MEDIATOR),
            second_predictor=series.get(SECOND_PREDICTOR),
            end_outcome=prov.get("end_outcome"),
            covariates=tuple(prov.get("covariates", ())),
        )


def series_provenance(data: SeriesData) -> dict[str, Any]:
    """What the mechanism models add to a fit's provenance: the series by role, the id columns,
    the end-of-treatment column and the version of the prior rules (so that a report restates
    the priors the fit used, :data:`bayes_alliance.mechanisms.priors.PRIOR_RULES`)."""
    return {
        "prior_rules": PRIOR_RULES,
        "series": dict(zip(data.roles, data.columns, strict=True)),
        "roles": {
            "patient": data.base.roles.patient,
            "session": data.base.roles.session,
            "therapist": data.base.roles.therapist,
        },
        "end_outcome": data.end_column,
        "covariates": [str(c) for c in data.base.covariates.columns if c != data.end_column],
    }


__all__ = ["series_data_from_table", "series_provenance", "series_table"]
