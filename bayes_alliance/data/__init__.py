"""Session data: reading tables, validation with problems that name rows and columns, reshaping,
and the patient x session grids the models take (:class:`SessionData` for the joint model,
:class:`~bayes_alliance.data.series_data.SeriesData` for the mechanism models)."""

from bayes_alliance.data.session_data import DataValidationError, DataWarning, SessionData

__all__ = ["DataValidationError", "DataWarning", "SessionData"]


def __getattr__(name: str) -> object:
    # Old names of the flat module this subpackage replaced (bayes_alliance.compat).
    from bayes_alliance.compat import moved_name

    return moved_name(__name__, name)
