"""bayes_alliance: Bayesian trait/state models for session-by-session psychotherapy data."""

from bayes_alliance.data import DataValidationError, DataWarning, SessionData
from bayes_alliance.simulation import Truth, simulate

__version__ = "0.1.0"

__all__ = ["DataValidationError", "DataWarning", "SessionData", "Truth", "__version__", "simulate"]
