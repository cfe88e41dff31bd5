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

The mechanism models (k series: a mediator, a second informant, one series alone, an end
outcome, a baseline) are studied the same way with ``simulator = "mechanisms"`` in ``[study]``:
``[simulate]`` and ``[conditions]`` then take the settings of
:func:`bayes_alliance.sim.mechanisms.simulate_mechanisms` (``design`` among them, required), the
methods are of kind ``mechanisms`` and the parameters are the mechanism models' effects, each
compared with its generating value (:mod:`bayes_alliance.study.mechanism_truth`). Designs that
share no settings are listed one by one, each ``[[conditions]]`` table one condition::

    [[conditions]]
    design = "single"
    path_sd = [0.15]

    [[conditions]]
    design = "mediation_informants"

A condition gives rows for the parameters its design has a true value of; a parameter that no
condition has a true value of is an error naming it.

A condition's data seeds come from a hash of its settings, not its place in the grid, so the
same settings give the same data sets in any study with the same seed. A study folder belongs
to one study file: changing the grid, the methods or the seed makes another study (another
folder); only the number of replications may change, to extend or cut short a study.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
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

METHOD_KINDS = ("joint", "two_step", "observed_reml", "mechanisms")
SIMULATORS = ("sessions", "mechanisms")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_STUDY_KEYS = (
    "name",
    "seed",
    "replications",
    "parameters",
    "ci_prob",
    "description",
    "simulator",
)
# A mechanisms method's model options (the rest of a mechanism model follows the data: its
# series, therapist level, end outcome and baseline). ``random_lags`` defaults to the paths the
# simulation varies, ``trend`` to the simulator's changes (on when they vary).
MECHANISM_MODEL_KEYS = ("therapist_level", "random_lags", "trend", "lag_trait_covariance")
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
        if self.kind == "mechanisms":  # its rows are those of the condition's truth
            return True
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
    simulator: str = "sessions"
    cases: tuple[dict[str, Any], ...] = ()

    def conditions(self) -> list[Condition]:
        if self.cases:  # listed one by one ([[conditions]] tables)
            return [
                Condition(f"c{i + 1:02d}", dict(case), settings_key(case))
                for i, case in enumerate(self.cases)
            ]
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
        return dataclasses.replace(self, replications=n)

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
        if self.simulator != "sessions":  # (the main model's studies keep their folders)
            d["simulator"] = self.simulator
        if self.cases:
            d["cases"] = list(self.cases)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def settings_key(settings: dict[str, Any]) -> int:
    """A stable 63-bit key of a condition's settings (its seeds' source)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def _method(raw: Any, i: int, simulator: str = "sessions") -> Method:
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
    if (kind == "mechanisms") != (simulator == "mechanisms"):
        raise ValueError(
            f"[{where}] kind {kind!r} does not fit the study's simulator {simulator!r}: the "
            "mechanism models (kind 'mechanisms') are studied on the mechanisms simulator "
            '([study] simulator = "mechanisms"), the other methods on the main one'
        )
    model = dict(raw.get("model", {}))
    sampler = dict(raw.get("sampler", {}))
    if kind not in ("joint", "mechanisms") and (model or sampler):
        raise ValueError(
            f"[{where}] model and sampler options are for kind 'joint' or 'mechanisms' only"
        )
    if kind == "mechanisms":
        checked = _mechanism_model(model, f"{where} model")
    else:
        checked = MODEL.check(model, f"{where} model")
        MODEL.build(checked)  # the spec's own cross-checks
    sampler_values = SAMPLER.check(sampler, f"{where} sampler")
    if "seed" in sampler_values:
        raise ValueError(f"[{where} sampler] seed: seeds come from the study's seed")
    return Method(raw["name"], kind, checked, SAMPLER.build(sampler_values))


def _mechanism_model(model: dict[str, Any], where: str) -> dict[str, Any]:
    """A mechanisms method's model options, checked by key and kind."""
    check_keys(model, MECHANISM_MODEL_KEYS, where)
    for key in ("therapist_level", "trend", "lag_trait_covariance"):
        if key in model and not isinstance(model[key], bool):
            raise ValueError(f"[{where}] {key} must be true or false")
    lags = model.get("random_lags")
    if lags is not None and (
        not isinstance(lags, list) or not all(isinstance(n, str) for n in lags)
    ):
        raise ValueError(f'[{where}] random_lags must be a list of names, e.g. ["state_effect"]')
    return model


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
    simulator = head.get("simulator", "sessions")
    if simulator not in SIMULATORS:
        raise ValueError(
            f"[study] simulator {simulator!r} is not one of {', '.join(SIMULATORS)}."
            + vocab.suggest(str(simulator), SIMULATORS)
        )
    params = head.get("parameters")
    if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
        raise ValueError('[study] parameters must be a list of names, e.g. ["state_effect"]')
    if simulator == "mechanisms":
        if bad := [p for p in params if not _is_mechanism_effect(p)]:
            known = vocab.MECHANISM_EFFECTS
            raise ValueError(
                "; ".join(
                    f"unknown effect {p!r} in [study] parameters.{vocab.suggest(p, known)}"
                    for p in bad
                )
                + " Known: the mechanism models' effects (bayes_alliance.core.vocab."
                "MECHANISM_EFFECTS) and the random lags' SDs, sd_<lag>_patient."
            )
    else:
        vocab.check_names(params, vocab.NAMED_PARAMETERS, "parameter in [study] parameters")
    ci = head.get("ci_prob", 0.95)
    if not isinstance(ci, float) or not 0 < ci < 1:
        raise ValueError("[study] ci_prob must be a number between 0 and 1, e.g. 0.95")
    sim_names = setting_names() if simulator == "sessions" else mechanism_setting_names()
    fixed = dict(raw.get("simulate", {}))
    check_keys(fixed, sim_names, "simulate")
    grid_raw = raw.get("conditions", {})
    cases: tuple[dict[str, Any], ...] = ()
    if isinstance(grid_raw, list):  # [[conditions]]: one condition per table
        cases = tuple(_case(c, i, fixed, sim_names) for i, c in enumerate(grid_raw))
        grid_raw = {}
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
    methods = tuple(_method(m, i, simulator) for i, m in enumerate(methods_raw))
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
        simulator,
        cases,
    )
    if simulator == "mechanisms":
        _check_mechanism_settings(study)
    else:
        _check_settings(study)
    return study


def _is_mechanism_effect(name: str) -> bool:
    """An effect row of the mechanism models: the vocabulary's, or a random lag's SD."""
    return name in vocab.MECHANISM_EFFECTS or bool(
        re.fullmatch(r"sd_(\w+)_(patient|therapist)|sd_path_\w+<-\w+(_therapist)?", name)
    )


def mechanism_setting_names() -> tuple[str, ...]:
    """The settings of :func:`bayes_alliance.sim.mechanisms.simulate_mechanisms` (its seed
    comes from the study)."""
    from bayes_alliance.sim.mechanisms import simulate_mechanisms

    names = inspect.signature(simulate_mechanisms).parameters
    return tuple(n for n in names if n != "seed")


def _case(raw: Any, i: int, fixed: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """One ``[[conditions]]`` table: its settings, none of them also in ``[simulate]``."""
    where = f"conditions #{i + 1}"
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"[[conditions]] #{i + 1} must be a table of settings")
    check_keys(raw, names, where)
    if both := sorted(set(raw) & set(fixed)):
        raise ValueError(f"[{where}] {both} also fixed in [simulate]: set each in one place")
    return dict(raw)


def _check_mechanism_settings(study: Study) -> None:
    """Every condition names a known design, its settings draw a data set (one, at the
    study's seed: the simulator checks them), and every parameter has a true value in at
    least one condition."""
    from bayes_alliance.sim.mechanisms import DESIGNS
    from bayes_alliance.study.mechanism_tasks import condition_truth

    found: set[str] = set()
    for cond in study.conditions():
        design = study.settings(cond).get("design")
        where = f"condition {cond.id} ({cond.varied})"
        if design is None:
            raise ValueError(
                f"{where}: a mechanism study names its design ([simulate] or [conditions] "
                f"design = one of {', '.join(DESIGNS)})"
            )
        if design not in DESIGNS:
            raise ValueError(
                f"{where}: design {design!r} is not one of {', '.join(DESIGNS)}."
                + vocab.suggest(str(design), DESIGNS)
            )
        try:
            found |= set(condition_truth(study, cond))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    if missing := [p for p in study.parameters if p not in found]:
        raise ValueError(
            f"[study] parameters {missing}: no condition has a true value of "
            + ("it" if len(missing) == 1 else "them")
            + f" (these conditions' designs have {', '.join(sorted(found))})"
        )


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
    "MECHANISM_MODEL_KEYS",
    "METHOD_KINDS",
    "SIMULATORS",
    "STUDIES",
    "Condition",
    "Method",
    "Study",
    "load_study",
    "mechanism_setting_names",
    "parse_study",
    "settings_key",
]
