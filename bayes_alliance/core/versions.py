"""The one list of libraries whose versions a fit records and its compiled code depends on.

The provenance of every result (:mod:`bayes_alliance.inference.sampling`) and the key of the
compiled-model cache (:mod:`bayes_alliance.inference.cache`) both read :func:`library_versions`,
so a cached kernel is never reused under versions other than those the provenance names.
"""

from __future__ import annotations

import platform
from importlib import metadata

LIBRARIES = (
    "bayes_alliance",
    "pymc",
    "pytensor",
    "nutpie",
    "numba",
    "llvmlite",
    "arviz-base",
    "arviz-stats",
    "numpy",
    "pandas",
    "xarray",
)


def library_versions() -> dict[str, str]:
    """Python's version and that of each library in :data:`LIBRARIES` ("not installed" when
    absent)."""
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


__all__ = ["LIBRARIES", "library_versions"]
