"""The module paths of the flat layout (0.1), importable for one more release with a warning.

Until 0.1 every module sat directly in ``bayes_alliance/``; they now live in subpackages by
layer (ARCHITECTURE.md). Scripts and notebooks that import an old path, e.g.
``from bayes_alliance.fit import fit`` or ``from bayes_alliance.model import build_model``,
keep working and get a ``DeprecationWarning`` that names the new path. Two mechanisms:

* an old module whose name is free now (``bayes_alliance.fit``) is a stand-in for its new
  module (:class:`OldModule`: reads and writes go through), given by a finder at the end of
  ``sys.meta_path`` (:class:`OldModulePaths`), so it is asked only after the real modules were
  not found;
* an old module whose name is now a subpackage (``bayes_alliance.model``) answers its old
  public names through the subpackage's ``__getattr__`` (:func:`moved_name`);
* a public name that was renamed in the move (:data:`RENAMED`, e.g. ``simulation.Design`` ->
  ``sim.settings.SimulationDesign``) is found under its old name, with a warning naming both.

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


# Public names that changed with the move: (old flat module, old name) -> "new.module:name".
# Names removed outright (internals: fit.result_of, posthoc.draw_dynamics, storage.read_result,
# mechanisms.is_mechanism_file, cli_mechanisms.write_files / run_fit) have no entry.
_COVARIATES = ("resolve_baseline", "baseline_level", "moderator_values", "baseline_values")
RENAMED = {
    ("simulation", "Design"): "sim.settings:SimulationDesign",
    ("simulation", "TrueParameters"): "sim.settings:TrueParameters",
    ("mechanism_report", "write_mechanism_report"): "report.write:write_report",
    ("mechanism_report", "effects_table"): "report.mechanisms:mechanism_effects_table",
    ("mechanism_report", "LABELS"): "report.labels:LABELS",
    ("mechanism_model", "Layout"): "mechanisms.priors:MechanismGrid",
    ("likelihood", "SeriesMoments"): "model.grid:SeriesMoments",
    ("options", "Section"): "spec.options:OptionGroup",
    ("report_render", "Section"): "report.render:ReportSection",
    ("report", "Section"): "report.render:ReportSection",
    ("report_mediation", "Layout"): "report.mediation:DiagramDrawer",
    ("display", "CI_PROB"): "core.intervals:DEFAULT_CI_PROB",
    ("display", "data_text"): "data.session_data:data_text",
    ("display", "data_html"): "data.session_data:data_html",
    ("posthoc", "states_of"): "inference.states:states_of",
    ("posthoc", "latent_deviation"): "inference.states:latent_deviation",
    **{("within", n): f"model.covariates:{n}" for n in (*_COVARIATES, "baseline_unit_values")},
}


def _renamed(old: str, name: str) -> Any:
    """The value of an old module's renamed name, with a warning; None when not renamed."""
    target = RENAMED.get((old, name))
    if target is None:
        return None
    module, _, attr = target.partition(":")
    _warn(f"{ROOT}.{old}.{name}", f"{ROOT}.{module}.{attr}")
    return getattr(importlib.import_module(f"{ROOT}.{module}"), attr)


class OldModule(types.ModuleType):
    """An old module path: every name is the new module's (reads and writes go through to it,
    so a test's monkeypatch of an old path still takes effect), and a renamed name is found
    under its old name with a warning."""

    _new: types.ModuleType
    _old: str

    def __getattr__(self, name: str) -> Any:
        value = _renamed(self._old, name)
        if value is not None:
            return value
        return getattr(self._new, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__") or name in ("_new", "_old"):
            super().__setattr__(name, value)
        else:
            setattr(self._new, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._new)) | {n for o, n in RENAMED if o == self._old})


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
        old = spec.name.partition(".")[2]
        new = f"{ROOT}.{MOVED[old]}"
        _warn(spec.name, new)
        module = OldModule(spec.name, f"Moved to {new}.")
        module._new = importlib.import_module(new)
        module._old = old
        return module

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
        value = _renamed(old, name)
        if value is not None:
            setattr(sys.modules[package], name, value)
            return value
        new = f"{ROOT}.{PACKAGES[old]}"
        value = getattr(importlib.import_module(new), name, None)
        if value is not None and not isinstance(value, types.ModuleType):
            _warn(f"{package}.{name}", f"{new}.{name}")
            # Bound on the subpackage, so the import system's second look does not warn again.
            setattr(sys.modules[package], name, value)
            return value
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
