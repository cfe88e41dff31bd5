"""What every command shares: exit statuses, the user-facing error, the check of a fit
folder (:func:`results_path`) and the interrupt handler.

Kept apart from :mod:`bayes_alliance.cli.app` (the entry point, which imports the commands)
so that the commands can import these without an import cycle.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pandas as pd

from bayes_alliance.core.files import check_results_file
from bayes_alliance.data.readers import read_table

EXIT_USAGE = 2
# The results are written, but the convergence check failed: scripts must not use them unseen.
EXIT_NOT_CONVERGED = 3
EXIT_INTERNAL = 1
# Set to see the traceback of an unexpected error (a bug) instead of its one-line summary.
TRACEBACK_ENV = "BAYES_ALLIANCE_TRACEBACK"


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def results_path(folder: str | Path) -> Path:
    """``folder/fit.nc`` once checked: a missing, truncated or foreign file is one clear error
    naming the path (raised before any result is loaded, which takes a while)."""
    path = Path(folder) / "fit.nc"
    if not path.is_file():
        raise CLIError(f"{folder} has no fit.nc (write one with 'bayes-alliance fit')")
    return check_results_file(path)


class _Interrupts:
    """Ctrl-C and ``kill`` (SIGTERM) during a command.

    The handler records the signal before raising ``KeyboardInterrupt``, because samplers catch
    that exception and return the draws made so far (nutpie and PyMC both do): a command checks
    :meth:`check` after sampling, so a fit cut short is never written as if it were complete.
    SIGTERM is handled like Ctrl-C so a killed run also removes its temporary folder.
    """

    signals = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        self.signum = None
        if threading.current_thread() is not threading.main_thread():
            yield  # handlers can only be set from the main thread; keep Python's default
            return
        previous = {s: signal.signal(s, self._handle) for s in self.signals}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a signal arrived, even one a sampler swallowed."""
        if self.signum is not None:
            raise KeyboardInterrupt


INTERRUPTS = _Interrupts()


def read_data(args: argparse.Namespace, path: str) -> pd.DataFrame:
    """The data file, read by its extension and ``--sheet`` (a
    :class:`~bayes_alliance.data.readers.ReadError` is one line, exit 2)."""
    text: str | None = args.sheet
    # --sheet 0: the first sheet, by position as in pandas; any other text is a sheet name
    sheet = int(text) if text is not None and text.isdigit() else text
    return read_table(path, sheet=sheet)
