"""PyTensor's messages that mean nothing to a user of this package, kept out of the output.

The models here are compiled by Numba (nutpie) or JAX, never through PyTensor's C backend, so
PyTensor's complaints about a missing C BLAS library do not concern them; yet on a pip install
they were the only line printed for minutes before sampling. They are filtered by their exact
text, nothing else: any other PyTensor warning still shows.

- ``UserWarning`` from ``pytensor.link.c.cmodule``: "PyTensor could not link to a BLAS
  installation. ..." (when the BLAS flags are first looked up);
- a ``logging`` warning on ``pytensor.tensor.blas``: "Using NumPy C-API based implementation
  for BLAS functions." (when a C function with a matrix product is compiled, e.g. PyMC's
  initial-point and log-density helpers).

:func:`install` sets both filters once per process (called when the package is imported);
:func:`hidden` re-applies the warning filter inside a block (tests and ``warnings`` contexts
reset process filters).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

# (logger name, start of the message) of the logging records dropped
LOG_NOISE = (("pytensor.tensor.blas", "Using NumPy C-API based implementation for BLAS"),)
# (message regex, module regex) of the warnings ignored
WARNING_NOISE = (
    (r"PyTensor could not link to a BLAS installation", r"pytensor\.link\.c\.cmodule"),
)


class _DropNoise(logging.Filter):
    """Drops a logger's records whose message starts with one of ``starts``."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def _filter_warnings() -> None:
    for message, module in WARNING_NOISE:
        warnings.filterwarnings("ignore", message=message, category=UserWarning, module=module)


def install() -> None:
    """Set the logging filters and the warning filters (idempotent)."""
    for name, start in LOG_NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise((start,)))
    _filter_warnings()


@contextlib.contextmanager
def hidden() -> Iterator[None]:
    """A block in which PyTensor's BLAS noise is filtered (the logging filters stay set)."""
    install()
    with warnings.catch_warnings():
        _filter_warnings()
        yield


__all__ = ["LOG_NOISE", "WARNING_NOISE", "hidden", "install"]
