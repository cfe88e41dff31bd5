"""Study files: a simulation or model-comparison study as a TOML file, checked like the
analysis specs (every key known, every value of the right kind, names with suggestions).

A study crosses a grid of simulator settings (the conditions) with replications and compares
methods on every simulated data set::

    [study]
    name = "centring"
    seed = 2026
    replications = 200
    parameters = ["outcome_autoregression", "state_effect"]
    ci_prob = 0.95

    [simulate]                     # fixed settings of bayes_alliance.simulate
    n_therapists = 1
    patients_per_therapist = 100

    [conditions]                   # the grid: every combination is one condition
    sessions = [5, 10, 20]

    [[methods]]
    name = "latent"
    kind = "joint"                 # the package's model
    model = { therapist_level = false }
    sampler = { draws = 500, tune = 500, chains = 2 }

    [[methods]]
    name = "observed_reml"
    kind = "observed_reml"         # REML, observed person-mean centring

A condition's data seeds come from a hash of its settings, not its place in the grid, so the
same settings give the same data sets in any study with the same seed. A study folder belongs
to one study file: changing the grid, the methods or the seed makes another study (another
folder); only the number of replications may change, to extend or cut short a study.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayes_alliance.core import vocab
from bayes_alliance.sim.settings import SimulationDesign, TrueParameters, setting_names
from bayes_alliance.spec.options import MODEL, SAMPLER, SamplerSettings, check_keys

METHOD_KINDS = ("joint", "two_step", "observed_reml")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_STUDY_KEYS = ("name", "seed", "replications", "parameters", "ci_prob", "description")
_METHOD_KEYS = ("name", "kind", "model", "sampler")
# What the classic methods estimate (the joint model estimates every named parameter).
CLASSIC_PARAMETERS = (vocab.STATE_EFFECT, vocab.OUTCOME_AUTOREGRESSION)


@dataclass(frozen=True)
class Method:
    """One method compared: its name in the results, its kind, and (joint model) the model
    options and sampler settings."""

    name: str
    kind: str
    model: dict[str, Any] = field(default_factory=dict)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)

    def estimates(self, parameter: str) -> bool:
        """Whether this method gives an estimate of ``parameter``: the joint model those of
        its options (e.g. the measurement-error SDs only with ``measurement_error``), so that
        an arm without a parameter gives no rows for it rather than failed ones."""
        if self.kind == "joint":
            return parameter in MODEL.build(self.model).free_parameters()
        return parameter in CLASSIC_PARAMETERS


@dataclass(frozen=True)
class Condition:
    """One cell of the grid: its id (``c01``, in grid order), the varied settings and the
    stable key its seeds derive from."""

    id: str
    varied: dict[str, Any]
    key: int


@dataclass(frozen=True)
class Study:
    """A checked study file."""

    name: str
    seed: int
    replications: int
    parameters: tuple[str, ...]
    ci_prob: float
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    methods: tuple[Method, ...]
    path: Path | None = None
    description: str = ""

    def conditions(self) -> list[Condition]:
        names = list(self.grid)
        out = []
        for i, values in enumerate(itertools.product(*(self.grid[n] for n in names))):
            varied = dict(zip(names, values, strict=True))
            out.append(Condition(f"c{i + 1:02d}", varied, settings_key(varied)))
        return out

    def settings(self, condition: Condition) -> dict[str, Any]:
        """The simulator's settings of a condition (fixed ones, then the varied ones)."""
        merged = {**self.fixed, **condition.varied}
        # TOML has no tuples: [lo, hi] ranges of SimulationDesign become tuples.
        return {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()}

    def method(self, name: str) -> Method:
        return next(m for m in self.methods if m.name == name)

    def with_replications(self, n: int) -> Study:
        return Study(
            self.name,
            self.seed,
            n,
            self.parameters,
            self.ci_prob,
            self.fixed,
            self.grid,
            self.methods,
            self.path,
            self.description,
        )

    def fingerprint(self) -> str:
        """Hash of everything that determines the results (not the replication count, so a
        study can be extended or cut short and resumed)."""
        d = {
            "seed": self.seed,
            "parameters": self.parameters,
            "ci_prob": self.ci_prob,
            "fixed": self.fixed,
            "grid": self.grid,
            "methods": [
                {
                    "name": m.name,
                    "kind": m.kind,
                    "model": m.model,
                    "sampler": vars(m.sampler),
                }
                for m in self.methods
            ],
        }
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def settings_key(settings: dict[str, Any]) -> int:
    """A stable 63-bit key of a condition's settings (its seeds' source)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def _method(raw: Any, i: int) -> Method:
    where = f"methods #{i + 1}"
    if not isinstance(raw, dict):
        raise ValueError(f"[[methods]] #{i + 1} must be a table")
    check_keys(raw, _METHOD_KEYS, where)
    for key in ("name", "kind"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ValueError(f"[{where}] needs a {key} (text)")
    if not _NAME.fullmatch(raw["name"]):
        raise ValueError(
            f"[{where}] name {raw['name']!r}: use letters, digits, '_', '-' and '.' (not first); "
            "it names the method's result files"
        )
    kind = raw["kind"]
    if kind not in METHOD_KINDS:
        raise ValueError(
            f"[{where}] kind {kind!r} is not one of {', '.join(METHOD_KINDS)}."
            + vocab.suggest(kind, METHOD_KINDS)
        )
    model = dict(raw.get("model", {}))
    sampler = dict(raw.get("sampler", {}))
    if kind != "joint" and (model or sampler):
        raise ValueError(f"[{where}] model and sampler options are for kind 'joint' only")
    checked = MODEL.check(model, f"{where} model")
    MODEL.build(checked)  # the spec's own cross-checks
    sampler_values = SAMPLER.check(sampler, f"{where} sampler")
    if "seed" in sampler_values:
        raise ValueError(f"[{where} sampler] seed: seeds come from the study's seed")
    return Method(raw["name"], kind, checked, SAMPLER.build(sampler_values))


def parse_study(raw: dict[str, Any], path: Path | None = None) -> Study:
    """Check a study file's tables and build the :class:`Study`.

    Raises
    ------
    ValueError
        Naming the table and key at fault (unknown keys with the closest known one).
    """
    check_keys(raw, ("study", "simulate", "conditions", "methods"), "file")
    head = raw.get("study")
    if not isinstance(head, dict):
        raise ValueError(
            "a study file needs a [study] table (name, seed, replications, parameters)"
        )
    check_keys(head, _STUDY_KEYS, "study")
    name = head.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError('[study] name must be a text, e.g. "centring"')
    seed, reps = head.get("seed"), head.get("replications")
    for key, value in (("seed", seed), ("replications", reps)):
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < (0 if key == "seed" else 1)
        ):
            raise ValueError(
                f"[study] {key} must be a whole number (>= {0 if key == 'seed' else 1})"
            )
    params = head.get("parameters")
    if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
        raise ValueError('[study] parameters must be a list of names, e.g. ["state_effect"]')
    vocab.check_names(params, vocab.NAMED_PARAMETERS, "parameter in [study] parameters")
    ci = head.get("ci_prob", 0.95)
    if not isinstance(ci, float) or not 0 < ci < 1:
        raise ValueError("[study] ci_prob must be a number between 0 and 1, e.g. 0.95")
    sim_names = setting_names()
    fixed = dict(raw.get("simulate", {}))
    check_keys(fixed, sim_names, "simulate")
    grid_raw = dict(raw.get("conditions", {}))
    check_keys(grid_raw, sim_names, "conditions")
    grid: dict[str, list[Any]] = {}
    for key, values in grid_raw.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"[conditions] {key} must be a non-empty list of values")
        if key in fixed:
            raise ValueError(f"{key} is both fixed in [simulate] and varied in [conditions]")
        grid[key] = values
    methods_raw = raw.get("methods")
    if not isinstance(methods_raw, list) or not methods_raw:
        raise ValueError("a study needs at least one [[methods]] table")
    methods = tuple(_method(m, i) for i, m in enumerate(methods_raw))
    names = [m.name for m in methods]
    if len(set(names)) < len(names):
        raise ValueError(f"method names must differ, got {names}")
    assert isinstance(seed, int) and isinstance(reps, int)
    study = Study(
        name,
        seed,
        reps,
        tuple(params),
        float(ci),
        fixed,
        grid,
        methods,
        path,
        str(head.get("description", "")),
    )
    _check_settings(study)
    return study


def _check_settings(study: Study) -> None:
    """Every condition's settings must be accepted by the simulator (checked without drawing
    a data set)."""
    from bayes_alliance.sim.settings import check_design, split_settings

    for cond in study.conditions():
        try:
            # Inside: a reliability is checked when it becomes an error SD.
            pkw, dkw = split_settings(study.settings(cond))
            check_design(SimulationDesign(**dkw), TrueParameters(**pkw))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"condition {cond.id} ({cond.varied}): {exc}") from None


def load_study(path: str | Path) -> Study:
    """Read and check a study file (a path, or the name of a shipped study such as
    ``centring``)."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and (STUDIES / f"{p.name}.toml").is_file():
        p = STUDIES / f"{p.name}.toml"
    if not p.is_file():
        shipped = ", ".join(sorted(s.stem for s in STUDIES.glob("*.toml")))
        raise ValueError(f"no study file {path!s} (shipped studies: {shipped})")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: not valid TOML ({exc})") from None
    try:
        return parse_study(raw, p)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None


STUDIES = Path(__file__).resolve().parents[1] / "specs" / "studies"

__all__ = [
    "CLASSIC_PARAMETERS",
    "METHOD_KINDS",
    "STUDIES",
    "Condition",
    "Method",
    "Study",
    "load_study",
    "parse_study",
    "settings_key",
]
