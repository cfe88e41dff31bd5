"""bayes_alliance: Bayesian trait/state models for session-by-session psychotherapy data.

The names below are the public interface. ``fit_frame`` goes from a table to a fitted model in
one call; the step-by-step path is ``SessionData.from_frame`` -> ``ModelSpec`` ->
``bayes_alliance.inference.fit.fit`` (or ``compile_model`` for refits without recompiling) ->
``FitResult`` -> ``write_report``. The mechanism models (a mediator series, a second
informant, an end-of-treatment outcome) go ``SeriesData.from_frame`` -> ``fit_mechanisms`` ->
``MechanismResult``. ``load_result`` reads a saved result of either kind. Names that need PyMC are imported on first use, so that
``import bayes_alliance`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bayes_alliance import compat
from bayes_alliance.core import quiet
from bayes_alliance.data.session_data import DataValidationError, DataWarning, SessionData
from bayes_alliance.sim.sessions import simulate
from bayes_alliance.sim.truth import Truth

if TYPE_CHECKING:
    from bayes_alliance.analysis.comparison import compare
    from bayes_alliance.core.diagnostics import ConvergenceWarning
    from bayes_alliance.data.readers import read_table, wide_to_long
    from bayes_alliance.data.series_data import SeriesData
    from bayes_alliance.inference.api import fit_frame
    from bayes_alliance.inference.compiled import CompiledModel, compile_model
    from bayes_alliance.inference.fit import FitResult
    from bayes_alliance.mechanisms.fit import MechanismResult, fit_mechanisms, load_mechanisms
    from bayes_alliance.mechanisms.load import load_result
    from bayes_alliance.mechanisms.spec import MechanismSpec
    from bayes_alliance.report.write import write_report
    from bayes_alliance.sim.mechanisms import simulate_mechanisms
    from bayes_alliance.spec.model_spec import ModelSpec

__version__ = "0.4.0"

# Old module paths of the flat layout keep working for one release (with a warning).
compat.install()
# PyTensor's C-BLAS notices concern a backend these models never use (core/quiet.py).
quiet.install()

_LAZY = {
    "fit_frame": "bayes_alliance.inference.api",
    "compare": "bayes_alliance.analysis.comparison",
    "CompiledModel": "bayes_alliance.inference.compiled",
    "compile_model": "bayes_alliance.inference.compiled",
    "ConvergenceWarning": "bayes_alliance.core.diagnostics",
    "FitResult": "bayes_alliance.inference.fit",
    "MechanismResult": "bayes_alliance.mechanisms.fit",
    "MechanismSpec": "bayes_alliance.mechanisms.spec",
    "SeriesData": "bayes_alliance.data.series_data",
    "fit_mechanisms": "bayes_alliance.mechanisms.fit",
    "load_mechanisms": "bayes_alliance.mechanisms.fit",
    "load_result": "bayes_alliance.mechanisms.load",
    "simulate_mechanisms": "bayes_alliance.sim.mechanisms",
    "read_table": "bayes_alliance.data.readers",
    "wide_to_long": "bayes_alliance.data.readers",
    "write_report": "bayes_alliance.report.write",
    "ModelSpec": "bayes_alliance.spec.model_spec",
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
    "load_result",
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
