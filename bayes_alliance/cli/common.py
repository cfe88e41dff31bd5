"""What every command shares: exit statuses, the user-facing error, and the interrupt handler.

Kept apart from :mod:`bayes_alliance.cli.app` (the entry point, which imports the commands)
so that the commands can import these without an import cycle.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_USAGE = 2
# The results are written, but the convergence check failed: scripts must not use them unseen.
EXIT_NOT_CONVERGED = 3
EXIT_INTERNAL = 1
# Set to see the traceback of an unexpected error (a bug) instead of its one-line summary.
TRACEBACK_ENV = "BAYES_ALLIANCE_TRACEBACK"


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


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
