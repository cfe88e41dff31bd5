"""The mechanism models (a mediator series, a second informant, an end-of-treatment outcome): spec, builder, effects and fit."""


def __getattr__(name: str) -> object:
    # Old names of the flat module this subpackage replaced (bayes_alliance.compat).
    from bayes_alliance.compat import moved_name

    return moved_name(__name__, name)
