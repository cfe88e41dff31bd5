"""The command line ``bayes-alliance``: the parser (:mod:`~bayes_alliance.cli.parser`), the
entry point (:mod:`~bayes_alliance.cli.app`) and the commands, imported only when one runs, so
that ``--help`` and ``--version`` answer without loading PyMC."""

from bayes_alliance.cli.app import main
from bayes_alliance.cli.common import EXIT_NOT_CONVERGED, EXIT_USAGE, CLIError
from bayes_alliance.cli.parser import build_parser

__all__ = ["EXIT_NOT_CONVERGED", "EXIT_USAGE", "CLIError", "build_parser", "main"]


def __getattr__(name: str) -> object:
    # Old names of the flat module this subpackage replaced (bayes_alliance.compat).
    from bayes_alliance.compat import moved_name

    return moved_name(__name__, name)
