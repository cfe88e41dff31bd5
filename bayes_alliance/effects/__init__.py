"""Derived effects as pure functions of posterior draws: R-squared components, standardised and long-run effects, ICCs, population within moments."""


def __getattr__(name: str) -> object:
    # Old names of the flat module this subpackage replaced (bayes_alliance.compat).
    from bayes_alliance.compat import moved_name

    return moved_name(__name__, name)
