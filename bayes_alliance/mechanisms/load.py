"""One loader for a results file of either model family: :func:`load_result`.

It lives in the mechanisms layer because that is the lowest layer that sees both result types
(the joint model's :class:`~bayes_alliance.inference.fit.FitResult` is in the inference layer
below). The file is read once (:func:`bayes_alliance.inference.storage.read_stored`) and its
provenance's ``spec.kind`` picks the result type; ``FitResult.load`` and ``load_mechanisms``
read one kind each and name the right loader for a file of the other.
"""

from __future__ import annotations

from pathlib import Path

from bayes_alliance.inference import storage
from bayes_alliance.inference.fit import FitResult
from bayes_alliance.inference.results import MECHANISM
from bayes_alliance.mechanisms.fit import MechanismResult

type AnyResult = FitResult | MechanismResult
"""A fitted result of either family."""


def load_result(path: str | Path) -> AnyResult:
    """Read a results file written by ``save`` of either family (also by earlier versions of
    this package, which wrote the same layout): a :class:`FitResult` for the joint model, a
    :class:`MechanismResult` for a mechanism model.

    Parameters
    ----------
    path
        The file (``fit.nc`` of a result folder). A missing, truncated or foreign file is one
        clear :class:`~bayes_alliance.core.files.ResultsFileError`.
    """
    stored = storage.read_stored(path)
    if stored.kind == MECHANISM:
        return MechanismResult.from_stored(stored)
    return FitResult.from_stored(stored)


__all__ = ["AnyResult", "load_result"]
