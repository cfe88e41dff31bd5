"""Command line: ``bayes-alliance <command> ...``.

Errors in the user's input or flags print one clear message (and, for data, every problem) and
exit with status 2; they never show a traceback. An interrupted run (Ctrl-C, ``kill``) writes
nothing, says so in one line, and exits with 128 + the signal number (130 for Ctrl-C).

The parser is :mod:`bayes_alliance.cli.parser` (its flags come from the option tables of
:mod:`bayes_alliance.spec.options`); the commands are :mod:`bayes_alliance.cli.commands`, imported
only when a command runs, so ``--help`` and ``--version`` answer without loading PyMC.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence

from bayes_alliance.cli.common import (
    EXIT_INTERNAL,
    EXIT_NOT_CONVERGED,
    EXIT_USAGE,
    INTERRUPTS,
    PROGRESS_HANDLER,
    TRACEBACK_ENV,
    CLIError,
)
from bayes_alliance.cli.parser import build_parser
from bayes_alliance.core.files import OutputExistsError, OutputLockedError, ResultsFileError
from bayes_alliance.data.session_data import DataValidationError
from bayes_alliance.inference import progress

__all__ = ["EXIT_NOT_CONVERGED", "EXIT_USAGE", "CLIError", "build_parser", "main"]


def _interrupted_status() -> int:
    signum = INTERRUPTS.signum or signal.SIGINT
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    print(
        f"interrupted ({name}): stopped; nothing was written (outputs appear only when complete)",
        file=sys.stderr,
    )
    return 128 + signum


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"  # not "[Errno 13] ..."
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; return its exit status (argparse exits with 2 on bad flags)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with INTERRUPTS.installed(), _progress_log(args):
        try:
            from bayes_alliance.cli import commands as cli_commands

            rc: int = getattr(cli_commands, f"cmd_{args.command}")(args)
            return rc
        except KeyboardInterrupt:
            return _interrupted_status()
        except Exception as exc:
            if INTERRUPTS.signum is not None:
                # A sampler swallowed the interrupt and what followed failed on its partial
                # draws: report the interrupt, not that failure.
                return _interrupted_status()
            return _report_error(exc)


@contextlib.contextmanager
def _progress_log(args: argparse.Namespace) -> Iterator[None]:
    """The progress lines of a command that fits (one with ``--quiet``) on standard error:
    one per stage, and every 10 % of sampling unless nutpie's own bar shows them (a
    terminal); ``--quiet`` shows none."""
    if not hasattr(args, "quiet") or args.quiet:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(PROGRESS_HANDLER)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    if sys.stderr.isatty():
        handler.addFilter(lambda r: getattr(r, "progress", None) != progress.SAMPLING)
    logger = logging.getLogger("bayes_alliance")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _report_error(exc: Exception) -> int:
    if isinstance(
        exc,
        (
            DataValidationError,
            CLIError,
            OutputExistsError,
            OutputLockedError,
            ResultsFileError,
            ValueError,  # our own checks of settings and options, worded for users
            OSError,  # files that cannot be read or written: missing, a folder, no permission
        ),
    ):
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, RuntimeError):
        # The sampler's own failures (nutpie raises RuntimeError): one line, no traceback.
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        print(
            f"error: sampling failed ({first}); nothing was written. Check the data for extreme "
            "values, or try another --seed; please report it with the data's description.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    if os.environ.get(TRACEBACK_ENV):
        raise exc
    print(
        f"error: unexpected {type(exc).__name__}: {exc}. This is a bug; please report it with "
        f"the command and 'bayes-alliance --version' ({TRACEBACK_ENV}=1 shows the traceback).",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
