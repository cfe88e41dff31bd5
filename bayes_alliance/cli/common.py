"""What every command shares: exit statuses, the user-facing error, the check of a fit
folder (:func:`results_path`) and the interrupt handler.

Kept apart from :mod:`bayes_alliance.cli.app` (the entry point, which imports the commands)
so that the commands can import these without an import cycle.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType

import pandas as pd

from bayes_alliance.core.files import check_results_file
from bayes_alliance.data.missing_codes import MissingCodes, describe_counts
from bayes_alliance.data.readers import FORMATS, read_table

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


# The flags naming the columns that codes for every column leave alone.
_KEPT_FLAGS = ("patient", "therapist", "session", "time", "id")


def missing_codes(args: argparse.Namespace) -> MissingCodes:
    """``--missing-code`` words, or the spec file's ``[data] missing_codes`` that
    :func:`~bayes_alliance.cli.commands.fit_inputs` put on ``args.spec_missing_codes``."""
    words = getattr(args, "missing_code", None) or []
    spec_codes = getattr(args, "spec_missing_codes", None)
    if words and spec_codes:
        raise CLIError(
            "--missing-code: the spec file sets [data] missing_codes; give them in one place "
            "(edit a copy of the spec)"
        )
    if spec_codes:
        return MissingCodes.coerce(spec_codes)
    try:
        return MissingCodes.parse(words)
    except ValueError as exc:
        raise CLIError(f"{exc}{swallowed_file(args)}") from None


def swallowed_file(args: argparse.Namespace) -> str:
    """A hint when ``--missing-code`` took the data file (argparse gives the flag every word
    up to the next flag), else ""."""
    words = getattr(args, "missing_code", None) or []
    files = [w for w in words if Path(w).suffix.lower() in FORMATS]
    return f" ({files[0]} is a data file: give it before --missing-code)" if files else ""


# The name of the handler that shows the package's log records (progress lines) on stderr
# while a command with --quiet runs without it.
PROGRESS_HANDLER = "bayes_alliance.cli.progress"


def progress_on_stderr() -> bool:
    """Whether the package's log records are shown on stderr now (a fitting command without
    ``--quiet``): what the reader logs is then not printed a second time."""
    return any(
        h.get_name() == PROGRESS_HANDLER for h in logging.getLogger("bayes_alliance").handlers
    )


def read_data(
    args: argparse.Namespace, path: str, keep: Iterable[str | None] | None = None
) -> pd.DataFrame:
    """The data file, read by its extension and ``--sheet`` (a
    :class:`~bayes_alliance.data.readers.ReadError` is one line, exit 2), with the declared
    missing-value codes (``--missing-code``) set to missing; ``keep`` names the id and session
    columns (default: those the flags name), which codes for every column leave alone."""
    text: str | None = args.sheet
    # --sheet 0: the first sheet, by position as in pandas; any other text is a sheet name
    sheet = int(text) if text is not None and text.isdigit() else text
    if keep is None:
        named = [getattr(args, k, None) for k in _KEPT_FLAGS]
        keep = [c for v in named for c in ([v] if isinstance(v, str) else (v or []))]
    codes = missing_codes(args)
    df = read_table(path, sheet=sheet, missing_codes=codes, keep=keep)
    if codes:
        counts = {c: int(n) for c, n in df.attrs.get("missing_codes", {}).items()}
        # read_table logs the line when cells were set missing; shown once, not twice.
        if not (counts and progress_on_stderr()):
            print(describe_counts(counts, codes), file=sys.stderr)
    return df
