"""bayes_alliance: Bayesian trait/state models for session-by-session psychotherapy data.

The names below are the public interface. ``fit_frame`` goes from a table to a fitted model in
one call; the step-by-step path is ``SessionData.from_frame`` -> ``ModelSpec`` ->
``bayes_alliance.fit.fit`` (or ``compile_model`` for refits without recompiling) ->
``FitResult`` -> ``write_report``. The mechanism models (a mediator series, a second
informant, an end-of-treatment outcome) go ``SeriesData.from_frame`` -> ``fit_mechanisms`` ->
``MechanismResult``. Names that need PyMC are imported on first use, so that
``import bayes_alliance`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bayes_alliance.data import DataValidationError, DataWarning, SessionData
from bayes_alliance.simulation import simulate
from bayes_alliance.simulation_truth import Truth

if TYPE_CHECKING:
    from bayes_alliance.api import fit_frame
    from bayes_alliance.comparison import compare
    from bayes_alliance.compiled import CompiledModel, compile_model
    from bayes_alliance.diagnostics import ConvergenceWarning
    from bayes_alliance.fit import FitResult
    from bayes_alliance.mechanism_sim import simulate_mechanisms
    from bayes_alliance.mechanism_spec import MechanismSpec
    from bayes_alliance.mechanisms import MechanismResult, fit_mechanisms, load_mechanisms
    from bayes_alliance.readers import read_table, wide_to_long
    from bayes_alliance.report import write_report
    from bayes_alliance.series_data import SeriesData
    from bayes_alliance.spec import ModelSpec

__version__ = "0.1.0"

_LAZY = {
    "fit_frame": "bayes_alliance.api",
    "compare": "bayes_alliance.comparison",
    "CompiledModel": "bayes_alliance.compiled",
    "compile_model": "bayes_alliance.compiled",
    "ConvergenceWarning": "bayes_alliance.diagnostics",
    "FitResult": "bayes_alliance.fit",
    "MechanismResult": "bayes_alliance.mechanisms",
    "MechanismSpec": "bayes_alliance.mechanism_spec",
    "SeriesData": "bayes_alliance.series_data",
    "fit_mechanisms": "bayes_alliance.mechanisms",
    "load_mechanisms": "bayes_alliance.mechanisms",
    "simulate_mechanisms": "bayes_alliance.mechanism_sim",
    "read_table": "bayes_alliance.readers",
    "wide_to_long": "bayes_alliance.readers",
    "write_report": "bayes_alliance.report",
    "ModelSpec": "bayes_alliance.spec",
}

__all__ = [
    "CompiledModel",
    "ConvergenceWarning",
    "DataValidationError",
    "DataWarning",
    "FitResult",
    "MechanismResult",
    "MechanismSpec",
    "ModelSpec",
    "SeriesData",
    "SessionData",
    "Truth",
    "__version__",
    "compare",
    "compile_model",
    "fit_frame",
    "fit_mechanisms",
    "load_mechanisms",
    "read_table",
    "simulate",
    "simulate_mechanisms",
    "wide_to_long",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayes_alliance' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
