"""Declarative analysis specs (TOML): data columns, model options, priors, sampler, seed.

A spec file reproduces an analysis exactly from spec + data + seed. Every key is checked: an
unknown key is an error that names the section and suggests the closest known key.

Example::

    name = "cross_lagged"
    description = "Bivariate latent-centred cross-lagged model"

    [data]
    patient = "patient"
    therapist = "therapist"
    session = "session"
    predictor = "alliance"
    outcome = "symptoms"

    [model]            # any field of bayes_alliance.spec.ModelSpec
    random_slopes = ["patient"]

    [priors.state_effect]
    dist = "Normal"
    mu = 0.0
    sigma = 0.5

    [sampler]
    draws = 1000
    tune = 1000
    chains = 2
    seed = 20261126
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_alliance import vocab
from bayes_alliance.data import SessionData
from bayes_alliance.spec import ModelSpec
from bayes_alliance.validate import Roles

TOP_KEYS = ("name", "description", "data", "model", "priors", "sampler")
DATA_KEYS = ("patient", "session", "predictor", "outcome", "therapist", "covariates", "crossed")
SAMPLER_KEYS = ("draws", "tune", "chains", "seed", "sampler")


@dataclass(frozen=True)
class SamplerSettings:
    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    seed: int = 1
    sampler: str = "nutpie"


@dataclass(frozen=True)
class AnalysisSpec:
    """A complete, reproducible analysis: which columns, which model, how to sample."""

    name: str
    description: str
    data: dict[str, Any]
    model: ModelSpec
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    path: Path | None = None

    def load_data(self, df: pd.DataFrame) -> SessionData:
        """Validate a data frame with this spec's column roles."""
        d = self.data
        roles = Roles(
            patient=d["patient"],
            session=d["session"],
            predictor=d["predictor"],
            outcome=d["outcome"],
            therapist=d.get("therapist"),
            covariates=tuple(d.get("covariates", ())),
            crossed=bool(d.get("crossed", False)),
        )
        return SessionData.from_roles(df, roles)


def _check(section: str, keys: Any, known: tuple[str, ...]) -> None:
    bad = [k for k in keys if k not in known]
    if bad:
        raise ValueError(
            "; ".join(f"unknown key {k!r} in [{section}].{vocab.suggest(k, known)}" for k in bad)
            + f" Known keys: {', '.join(known)}."
        )


def parse_spec(raw: dict[str, Any], source: str = "spec") -> AnalysisSpec:
    """Build an :class:`AnalysisSpec` from parsed TOML, checking every key."""
    _check(source, raw, TOP_KEYS)
    data = dict(raw.get("data", {}))
    _check("data", data, DATA_KEYS)
    missing = [k for k in ("patient", "session", "predictor", "outcome") if k not in data]
    if missing:
        raise ValueError(f"[data] must name the columns {missing}")
    model = dict(raw.get("model", {}))
    _check("model", model, tuple(f.name for f in fields(ModelSpec) if f.name != "priors"))
    sampler = dict(raw.get("sampler", {}))
    _check("sampler", sampler, SAMPLER_KEYS)
    priors = {k: dict(v) for k, v in raw.get("priors", {}).items()}
    if "therapist" not in data:
        model.setdefault("therapist_level", False)
    return AnalysisSpec(
        name=str(raw.get("name", source)),
        description=str(raw.get("description", "")),
        data=data,
        model=ModelSpec(**model, priors=priors),
        sampler=SamplerSettings(**sampler),
    )


def load_spec(path: str | Path) -> AnalysisSpec:
    """Read and validate a spec file; ``models/NAME`` may omit the ``.toml`` suffix."""
    p = Path(path)
    if not p.is_file() and p.with_suffix(".toml").is_file():
        p = p.with_suffix(".toml")
    if not p.is_file():
        raise FileNotFoundError(f"no spec file at {path}")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p} is not valid TOML: {exc}") from None
    spec = parse_spec(raw, p.stem)
    return AnalysisSpec(spec.name, spec.description, spec.data, spec.model, spec.sampler, p)
