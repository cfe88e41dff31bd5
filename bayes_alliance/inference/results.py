"""What every fitted result offers, whichever model family made it.

The joint model's :class:`~bayes_alliance.inference.fit.FitResult` and the mechanism models'
:class:`~bayes_alliance.mechanisms.fit.MechanismResult` both satisfy :class:`Result`: the
DataTree, spec, data, provenance and convergence check; ``summary`` and ``effects`` tables with
the same columns and the same intervals (highest density, :data:`DEFAULT_CI_PROB` unless
chosen); ``save`` to one compressed NetCDF file (:mod:`bayes_alliance.inference.storage`) and
``load`` from it. :func:`bayes_alliance.mechanisms.load.load_result` reads either kind; the
report (:func:`bayes_alliance.report.write.write_report`) and the command line's output folder
(:mod:`bayes_alliance.cli.output`) take either.

:func:`summarise_draws` is the one way both families summarise derived effects per draw.

The report's sections are the one part of the protocol that is not a method: a result lives
in the inference layer (or the mechanisms' layer above it) and the report two layers higher,
so a result cannot build its sections without an upward import. The report layer dispatches on
the kind instead (:func:`bayes_alliance.report.write.report_sections`), with one renderer and one
label table for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core import diagnostics
from bayes_alliance.core.intervals import CI_KIND, DEFAULT_CI_PROB

SUMMARY_COLUMNS = ["mean", "sd", "ci_low", "ci_high", "ess_bulk", "ess_tail", "r_hat"]

MAIN = "main"
MECHANISM = "mechanism"
RESULT_KINDS = (MAIN, MECHANISM)


@runtime_checkable
class Result(Protocol):
    """A fitted model of either family (see the module docstring)."""

    idata: xr.DataTree
    provenance: dict[str, Any]
    convergence: diagnostics.Convergence

    @property
    def kind(self) -> str:
        """``"main"`` (the joint trait/state model) or ``"mechanism"``."""
        ...

    def summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """The model's parameters: mean, sd, ci_low, ci_high (HDI), ESS, R-hat."""
        ...

    def effects(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """The derived effects, with the summary's columns."""
        ...

    def save(self, path: str | Path, *, force: bool = False, store: tuple[str, ...] = ()) -> Path:
        """Write the result to one compressed NetCDF file, atomically."""
        ...

    @classmethod
    def load(cls, path: str | Path) -> Result:
        """Read a result of this kind written by :meth:`save` (or by an earlier version)."""
        ...


def kind_of(provenance: Mapping[str, Any]) -> str:
    """The kind of result a provenance describes (its spec's ``kind``; the joint model's spec
    has none)."""
    spec = provenance.get("spec") or {}
    return str(spec.get("kind", MAIN)) if isinstance(spec, Mapping) else MAIN


def summarise_draws(
    draws: Mapping[str, np.ndarray | xr.DataArray], ci_prob: float = DEFAULT_CI_PROB
) -> pd.DataFrame:
    """Summary of quantities computed per draw: each a ``(chain, draw)`` array, or a DataArray
    with further dimensions (one row per entry, ``name[coord]``); columns
    :data:`SUMMARY_COLUMNS`, intervals of kind :data:`~bayes_alliance.core.intervals.CI_KIND`."""
    ds = xr.Dataset(
        {
            k: val if isinstance(val, xr.DataArray) else xr.DataArray(val, dims=("chain", "draw"))
            for k, val in draws.items()
        }
    )
    tree = xr.DataTree(children={"posterior": xr.DataTree(ds)})
    return diagnostics.summarise(tree, list(draws), ci_prob, CI_KIND)


__all__ = [
    "MAIN",
    "MECHANISM",
    "RESULT_KINDS",
    "SUMMARY_COLUMNS",
    "Result",
    "kind_of",
    "summarise_draws",
]
