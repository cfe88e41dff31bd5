"""One table of every user-facing option: column roles, model options, sampler settings.

Each :class:`Option` names a field of :class:`~bayes_alliance.data.validate.Roles`,
:class:`~bayes_alliance.spec.model_spec.ModelSpec` or :class:`SamplerSettings`, which is also its key in a
spec file's ``[data]``, ``[model]`` or ``[sampler]`` table, and gives its kind, its help text and
its command-line flag. From these tables come the argparse flags (:meth:`OptionGroup.add_flags`,
:meth:`OptionGroup.from_args`), the spec-file checks (:meth:`OptionGroup.check`) and the objects
(:meth:`OptionGroup.build`), so an option is declared once. Defaults are read from the dataclasses
themselves, never repeated here.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bayes_alliance.core import vocab
from bayes_alliance.data.roles import Roles
from bayes_alliance.spec import model_spec as spec

# What an option holds. "column": a column name; "names": a list of strings (comma-separated on
# the command line); "flag": a boolean; "choice": one string of `choices`; "count": an integer of
# at least `minimum`; "number": a real number (default None: not given).
OPTION_KINDS = ("column", "names", "flag", "choice", "count", "number")


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample: draws and tuning steps per chain, chains, seed, sampler."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    seed: int = 1
    sampler: str = "nutpie"


@dataclass(frozen=True)
class Option:
    """One option: field and spec-file key ``name``, what it holds, and how the CLI spells it.

    ``flag`` defaults to ``--name`` with dashes (``--no-name`` for a flag that is on by
    default); ``cli=False`` keeps an option out of the command line (spec files and Python only);
    ``aliases`` are further spellings of the flag.
    """

    name: str
    kind: str
    help: str
    flag: str | None = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    cli: bool = True
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in OPTION_KINDS:
            raise ValueError(f"unknown option kind {self.kind!r}")


@dataclass(frozen=True)
class OptionGroup:
    """The options of one dataclass, which is also one table of a spec file."""

    table: str  # the spec file's table: data, model or sampler
    target: type
    options: tuple[Option, ...]
    required: tuple[str, ...] = ()  # keys every analysis must give

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)

    def default(self, name: str) -> Any:
        """The target dataclass's default (``dataclasses.MISSING`` for a required field)."""
        f = self.target.__dataclass_fields__[name]  # type: ignore[attr-defined]
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return f.default

    def flag(self, o: Option) -> str:
        if o.flag is not None:
            return o.flag
        stem = o.name.replace("_", "-")
        return f"--no-{stem}" if o.kind == "flag" and self.default(o.name) is True else f"--{stem}"

    def check(self, raw: Mapping[str, Any], where: str | None = None) -> dict[str, Any]:
        """Check a spec file's table: known keys (with suggestions), and each value's type.

        Returns the values converted for the target (lists of names become tuples).

        Raises
        ------
        ValueError
            Naming every unknown key with the closest known one, or the first value of the
            wrong type with an example of the right one.
        """
        where = where or self.table
        check_keys(raw, self.names, where)
        return {k: _convert(self.option(k), v, f"[{where}] {k}") for k, v in raw.items()}

    def add_flags(
        self,
        parser: argparse.ArgumentParser | argparse._ArgumentGroup,
        *,
        required: bool = False,
        only: tuple[str, ...] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        """Add one flag per option to ``parser``; every flag's default is None, so
        :meth:`from_args` can tell a given flag from an absent one."""
        for o in self.options:
            if not o.cli or (only is not None and o.name not in only):
                continue
            default = (defaults or {}).get(o.name, self.default(o.name))
            kw: dict[str, Any] = {"dest": o.name, "default": None, "help": _help(o, default)}
            if o.kind == "flag":
                kw.update(action="store_const", const=not default)
            else:
                kw["metavar"] = (
                    "{" + ",".join(o.choices) + "}"
                    if o.choices
                    else {"names": "NAME,...", "count": "N", "number": "X"}.get(
                        o.kind, o.name.upper()
                    )
                )
                kw["type"] = {"names": _comma_list, "count": int, "number": float}.get(o.kind, str)
                kw["required"] = required and o.name in self.required
            parser.add_argument(self.flag(o), *o.aliases, **kw)

    def given(self, args: argparse.Namespace) -> list[str]:
        """The flags of this section given on the command line."""
        return [self.flag(o) for o in self.options if getattr(args, o.name, None) is not None]

    def from_args(
        self, args: argparse.Namespace, defaults: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The values given on the command line, with ``defaults`` for absent ones; counts and
        choices are checked here (the spelling of the message is the flag's), the rest by the
        target."""
        values = dict(defaults or {})
        for o in self.options:
            v = getattr(args, o.name, None)
            if v is None:
                continue
            if o.kind == "count" and o.minimum is not None and v < o.minimum:
                raise ValueError(f"{self.flag(o)} must be at least {o.minimum}, got {v}")
            if o.kind == "choice" and v not in o.choices:
                raise ValueError(_not_a_choice(self.flag(o), o, v))
            values[o.name] = v
        return values

    def build(self, values: Mapping[str, Any], **extra: Any) -> Any:
        """The target dataclass from values (defaults for the rest); lists of names become
        tuples, as the frozen dataclasses hold them (a saved result's roles come back as lists)."""
        names = {o.name for o in self.options if o.kind == "names"}
        return self.target(**{k: tuple(v) if k in names else v for k, v in values.items()}, **extra)


def check_keys(raw: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    """Raise ValueError naming every key of ``raw`` outside ``known``, each with a suggestion."""
    bad = [k for k in raw if k not in known]
    if bad:
        raise ValueError(
            "; ".join(f"unknown key {k!r} in [{where}].{vocab.suggest(k, known)}" for k in bad)
            + f" Known keys: {', '.join(known)}."
        )


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _help(o: Option, default: Any) -> str:
    shown = o.kind in ("choice", "count") and default not in (None, dataclasses.MISSING)
    return f"{o.help} (default {default})" if shown else o.help


def _not_a_choice(where: str, o: Option, value: str) -> str:
    return (
        f"{where} must be one of {', '.join(o.choices)}, got {value!r}."
        f"{vocab.suggest(value, o.choices)}"
    )


_EXAMPLES = {"column": '"patient"', "names": '["a", "b"]', "count": "1000", "number": "7"}


def _convert(o: Option, value: Any, where: str) -> Any:
    """A spec-file value checked against the option's kind; names become a tuple."""
    ok: bool
    if o.kind == "names":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    elif o.kind == "flag":
        ok = isinstance(value, bool)
    elif o.kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif o.kind == "count":
        # bool is an int in Python, never a count
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and o.minimum is not None and value < o.minimum:
            raise ValueError(f"{where} must be at least {o.minimum}, got {value}")
    else:
        ok = isinstance(value, str)
        if ok and o.kind == "choice" and value not in o.choices:
            raise ValueError(_not_a_choice(where, o, value))
    if not ok:
        if o.kind == "choice":
            example = f'"{o.choices[0]}"'
        else:
            example = _EXAMPLES.get(o.kind, "true")
        raise ValueError(f"{where} must be a {_KIND_WORDS[o.kind]} (e.g. {example}), got {value!r}")
    return value


_KIND_WORDS = {
    "column": "column name",
    "names": "list of names",
    "flag": "boolean",
    "choice": "string",
    "count": "whole number",
    "number": "number",
}


ROLES = OptionGroup(
    "data",
    Roles,
    (
        Option("patient", "column", "column with patient ids"),
        Option("session", "column", "column with session numbers (whole numbers >= 0)"),
        Option("predictor", "column", "time-varying predictor x, e.g. alliance"),
        Option("outcome", "column", "time-varying outcome y, e.g. symptoms"),
        Option("therapist", "column", "column with therapist ids (omit for two-level data)"),
        Option("covariates", "names", "patient-level columns (constant within patient)"),
        Option("crossed", "flag", "patients may see several therapists"),
        Option(
            "mediator",
            "column",
            "session-level mediator m: within-level mediation x_t -> m_(t+1) -> y_(t+2) with "
            "random a and b paths (a mechanism model)",
        ),
        Option(
            "second_predictor",
            "column",
            "the other informant's rating of the predictor, e.g. therapist-rated alliance "
            "(a mechanism model)",
        ),
        Option(
            "end_outcome",
            "column",
            "patient-level end-of-treatment outcome (post-treatment symptoms, or 0/1 dropout) "
            "regressed on trait-like alliance and each patient's alliance change",
        ),
        Option(
            "time",
            "column",
            "numeric time of each session in --time-unit units, increasing within a patient: "
            "fits continuous time (drift matrix A, Phi(dt) = expm(A dt) per interval)",
        ),
    ),
    required=("patient", "session", "predictor", "outcome"),
)

MODEL = OptionGroup(
    "model",
    spec.ModelSpec,
    (
        Option(
            "therapist_level",
            "flag",
            "two-level model (ignore --therapist)",
            flag="--no-therapist",
        ),
        Option(
            "equations",
            "choice",
            "bivariate VAR(1), or the single outcome equation",
            choices=spec.EQUATIONS,
        ),
        Option(
            "random_slopes",
            "names",
            "levels with random state effects: patient, therapist or both",
        ),
        Option(
            "random_lags",
            "names",
            "lagged paths that vary between patients, e.g. "
            "predictor_autoregression,state_effect; NAME@therapist: between therapists too "
            "(fitted by the k-series model, which then also takes --measurement-error for "
            "every series)",
        ),
        Option(
            "lag_trait_covariance",
            "flag",
            "the random lags' patient deviations covary with the latent means (one unstructured "
            "covariance of both; k-series model)",
        ),
        Option(
            "moderators",
            "names",
            "patient covariates moderating the state effect (also list them as covariates)",
        ),
        Option(
            "baseline",
            "names",
            "patient covariates whose effect on the outcome's trait is mediated by the "
            "predictor's trait (between-level mediation; also list them as covariates)",
        ),
        Option(
            "baseline_level",
            "choice",
            "level of the baseline columns: patient, therapist (constant within therapist; "
            "b = the therapist-level trait effect) or auto (therapist when constant within "
            "every therapist)",
            choices=spec.BASELINE_LEVELS,
        ),
        Option(
            "covariate_level",
            "choice",
            "level of the covariates that adjust the latent means: patient, therapist "
            "(constant within therapist) or auto (per column: therapist when constant within "
            "every therapist)",
            choices=spec.BASELINE_LEVELS,
        ),
        Option(
            "same_session", "choice", "lag-0 path between the states", choices=spec.SAME_SESSION
        ),
        Option("reverse_lag", "flag", "drop the outcome -> next predictor path"),
        Option("session_means", "flag", "one grand mean per session (RI-CLPM)"),
        Option("trend", "flag", "per-patient linear trend (detrending)"),
        Option(
            "first_session",
            "choice",
            "a patient's first state: stationary, or free (its own covariance)",
            choices=spec.FIRST_SESSION,
        ),
        Option(
            "innovations",
            "choice",
            "one innovation covariance (constant) or one per session (RI-CLPM; needs "
            "--first-session free)",
            choices=spec.INNOVATIONS,
        ),
        Option(
            "measurement_error",
            "flag",
            "measurement error in each observed score (the states are then error-free; "
            "needs the bivariate VAR(1)); with one rating per session it mixes slowly: "
            "expect to need several times the default draws",
        ),
        Option(
            "predictor_indicators",
            "names",
            "several indicator columns of the predictor per session (a factor model; the "
            "predictor's column is the marker)",
        ),
        Option(
            "outcome_indicators",
            "names",
            "several indicator columns of the outcome per session (a factor model; the "
            "outcome's column is the marker)",
        ),
        Option(
            "random_innovations",
            "names",
            "levels whose innovation SDs vary (patients who fluctuate more): patient, or "
            "patient,therapist",
        ),
        Option(
            "ceiling_predictor",
            "number",
            "the predictor's scale maximum: scores at it are censored (the true value is this or "
            "more), e.g. 7 for alliance ratings piling up at the top",
            aliases=("--ceiling",),
        ),
        Option(
            "floor_predictor",
            "number",
            "the predictor's scale minimum: scores at it are censored (this value or less)",
        ),
        Option(
            "ceiling_outcome",
            "number",
            "the outcome's scale maximum: scores at it are censored (this value or more)",
        ),
        Option(
            "floor_outcome",
            "number",
            "the outcome's scale minimum: scores at it are censored (this value or less), "
            "e.g. 0 for symptom scores",
        ),
        Option(
            "dynamics",
            "choice",
            "lagged within-person dynamics, or none for cross-sectional clusters",
            choices=spec.DYNAMICS,
        ),
        Option(
            "traits",
            "choice",
            "latent means integrated out in closed form, or sampled with the rest",
            choices=spec.TRAITS,
        ),
        Option(
            "time_model",
            "choice",
            "continuous: a continuous-time VAR(1) on the session times (the default with "
            "--dates or --time); sessions: one step per session number (--dates then only "
            "numbers the sessions in date order, the day gaps dropped; the patterns and "
            "feedback commands need it)",
            choices=spec.TIME_MODELS,
        ),
        Option(
            "time_unit",
            "choice",
            "unit of the session times and of the drift (dates: days unless weeks)",
            choices=spec.TIME_UNITS,
        ),
        Option(
            "effects_interval",
            "number",
            "continuous time: the interval (in time units) at which the lag effects are "
            "reported (default: the median interval of the data)",
        ),
        Option("store_states", "flag", "keep the per-session states in the posterior", cli=False),
    ),
)

SAMPLER = OptionGroup(
    "sampler",
    SamplerSettings,
    (
        Option("draws", "count", "posterior draws per chain", minimum=1),
        Option("tune", "count", "tuning steps per chain", minimum=0),
        Option("chains", "count", "chains", minimum=1),
        Option("seed", "count", "random seed, recorded in fit.nc", minimum=0),
        Option(
            "sampler",
            "choice",
            "NUTS implementation (numpyro, nutpie-jax: through JAX, for a GPU; the jax extra)",
            choices=("nutpie", "pymc", "numpyro", "nutpie-jax"),
        ),
    ),
)


def with_indicators(roles: Roles, model: spec.ModelSpec) -> Roles:
    """The roles with the model's indicator columns (other than the variables' own), so that
    the data keep and check them."""
    listed = (*model.predictor_indicators, *model.outcome_indicators)
    extra = tuple(c for c in dict.fromkeys(listed) if c not in roles.variables)
    return dataclasses.replace(roles, indicators=extra) if extra else roles


def make_roles(values: Mapping[str, Any]) -> Roles:
    """Column roles from checked values (spec file or flags)."""
    missing = [k for k in ROLES.required if not values.get(k)]
    if missing:
        raise ValueError(f"the columns {missing} must be named")
    # indicators come from the model options (with_indicators), not from the option table
    indicators = tuple(values.get("indicators", ()))
    roles = ROLES.build({k: val for k, val in values.items() if k != "indicators"})
    return dataclasses.replace(roles, indicators=indicators) if indicators else roles


def make_model(
    values: Mapping[str, Any], roles: Roles, priors: Mapping[str, Any] | None = None
) -> spec.ModelSpec:
    """The model options, with the rules that tie them to the columns: three levels exactly
    when a therapist column is named (unless set), moderators and baseline columns among the
    covariates (patient-level columns, checked constant within patient by validation)."""
    values = {"therapist_level": roles.therapist is not None, **values}
    if roles.time is not None and values.get("time_model") is None:
        values["time_model"] = "continuous"  # a time column is given to be used
    if roles.time is not None and values.get("time_model") == "sessions":
        # the session-number model would number each patient's sessions 1, 2, 3 in time order
        # and silently drop the gaps the time column records
        raise ValueError(
            f"a time column ({roles.time!r}: --time, or [data] time in a spec file) is used "
            "only by continuous time; with --time-model sessions (time_model = 'sessions') "
            "leave it out and the session column numbers the sessions"
        )
    for key, what in (("moderators", "moderator"), ("baseline", "baseline column")):
        undeclared = [m for m in values.get(key, ()) if m not in roles.covariates]
        if undeclared:
            raise ValueError(
                f"{what}(s) {undeclared} must also be listed as covariates "
                "(--covariates, or covariates in [data])"
            )
    return MODEL.build(values, priors=dict(priors or {}))
