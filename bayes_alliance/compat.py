"""The module paths of the flat layout (0.1), importable for one more release with a warning.

Until 0.1 every module sat directly in ``bayes_alliance/``; they now live in subpackages by
layer (ARCHITECTURE.md). Scripts and notebooks that import an old path, e.g.
``from bayes_alliance.fit import fit`` or ``from bayes_alliance.model import build_model``,
keep working and get a ``DeprecationWarning`` that names the new path. Two mechanisms:

* an old module whose name is free now (``bayes_alliance.fit``) is an alias of its new module,
  given by a finder at the end of ``sys.meta_path`` (:class:`OldModulePaths`), so it is asked
  only after the real modules were not found;
* an old module whose name is now a subpackage (``bayes_alliance.model``) answers its old
  public names through the subpackage's ``__getattr__`` (:func:`moved_name`).

The old paths go in 0.3; nothing in the package imports them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
import warnings
from typing import Any

ROOT = "bayes_alliance"

# Old flat module -> the module it became.
MOVED = {
    "api": "inference.api",
    "cache": "inference.cache",
    "caseload": "feedback.caseload",
    "classic": "analysis.classic",
    "cli_commands": "cli.commands",
    "cli_mechanisms": "cli.mechanisms",
    "cli_parser": "cli.parser",
    "cli_study": "cli.study",
    "comparison": "analysis.comparison",
    "compiled": "inference.compiled",
    "conflation": "analysis.conflation",
    "diagnostics": "core.diagnostics",
    "display": "inference.display",
    "dynamics": "kernels.dynamics",
    "feedback_output": "feedback.output",
    "fit": "inference.fit",
    "gaps": "kernels.gaps",
    "io": "core.files",
    "kalman_op": "kernels.kalman_op",
    "likelihood": "model.likelihood",
    "lmm": "analysis.lmm",
    "marginal": "kernels.marginal",
    "mechanism_effects": "mechanisms.effects",
    "mechanism_model": "mechanisms.model",
    "mechanism_report": "report.mechanisms",
    "mechanism_sim": "sim.mechanisms",
    "mechanism_spec": "mechanisms.spec",
    "moments": "kernels.moments",
    "native_code": "inference.native_code",
    "options": "spec.options",
    "path_diagram": "report.path_diagram",
    "path_layouts": "report.path_layouts",
    "patient_density": "analysis.patient_density",
    "patient_update": "feedback.patient_update",
    "pattern_outcome": "analysis.pattern_outcome",
    "pattern_sim": "sim.patterns",
    "pattern_table": "analysis.pattern_table",
    "patterns": "analysis.patterns",
    "plots": "report.plots",
    "posthoc": "inference.posthoc",
    "predictive": "inference.predictive",
    "prior_predictive": "inference.prior_predictive",
    "priors": "model.priors",
    "problems": "core.problems",
    "profiles": "feedback.profiles",
    "r2": "kernels.r2",
    "readers": "data.readers",
    "report_checks": "report.checks",
    "report_mediation": "report.mediation",
    "report_methods": "report.methods",
    "report_render": "report.render",
    "report_sessions": "report.sessions",
    "report_text": "report.model_text",
    "report_words": "report.words",
    "reshape": "data.reshape",
    "sampling": "inference.sampling",
    "series_data": "data.series_data",
    "simulation": "sim.sessions",
    "simulation_truth": "sim.truth",
    "specfile": "spec.specfile",
    "storage": "inference.storage",
    "study_plots": "study.plots",
    "study_report": "study.report",
    "study_runner": "study.runner",
    "study_spec": "study.spec",
    "study_summary": "study.summary",
    "study_tasks": "study.tasks",
    "table_format": "report.format",
    "table_labels": "report.labels",
    "tables": "report.tables",
    "validate": "data.validate",
    "variance": "effects.variance",
    "vocab": "core.vocab",
    "within": "model.within",
}

# Old flat modules whose name is now a subpackage -> the module that holds their names.
PACKAGES = {
    "cli": "cli.app",
    "data": "data.session_data",
    "effects": "effects.derived",
    "feedback": "feedback.patient_feedback",
    "mechanisms": "mechanisms.fit",
    "model": "model.build",
    "report": "report.write",
    "spec": "spec.model_spec",
}


_HERE = os.path.dirname(os.path.abspath(__file__))


def _warn(old: str, new: str) -> None:
    # Attributed to the user's import line: this package's frames are skipped (and Python skips
    # the import system's own).
    warnings.warn(
        f"{old} moved to {new} (bayes_alliance 0.2); import it from there, the old path goes "
        "in 0.3",
        DeprecationWarning,
        skip_file_prefixes=(_HERE,),
    )


class OldModulePaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``bayes_alliance.<old name>`` and returns the new module under that name."""

    def find_spec(
        self, fullname: str, path: Any = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        root, _, old = fullname.partition(".")
        if root != ROOT or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = f"{ROOT}.{MOVED[spec.name.partition('.')[2]]}"
        _warn(spec.name, new)
        # The module itself (its own __spec__ and __name__ are kept): one object, two names.
        return importlib.import_module(new)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the new module is already executed."""


def install() -> None:
    """Add the finder once, after the real finders."""
    if not any(isinstance(f, OldModulePaths) for f in sys.meta_path):
        sys.meta_path.append(OldModulePaths())


def moved_name(package: str, name: str) -> Any:
    """A subpackage's ``__getattr__``: an old public name of the flat module that had the
    subpackage's name, with a warning; AttributeError for anything else (submodules are
    imported by the import system then)."""
    old = package.rpartition(".")[2]
    # A submodule's name is left to the import system (``from bayes_alliance.report import
    # plots`` must not import the old module's replacement first: that can be circular).
    submodule = importlib.util.find_spec(f"{package}.{name}") is not None
    if old in PACKAGES and not name.startswith("_") and not submodule:
        new = f"{ROOT}.{PACKAGES[old]}"
        value = getattr(importlib.import_module(new), name, None)
        if value is not None and not isinstance(value, types.ModuleType):
            _warn(f"{package}.{name}", f"{new}.{name}")
            # Bound on the subpackage, so the import system's second look does not warn again.
            setattr(sys.modules[package], name, value)
            return value
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
