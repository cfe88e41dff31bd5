"""Model builders: the joint trait/state model as an unsampled ``pm.Model`` (priors, within-person part, likelihoods); nothing here samples."""


def __getattr__(name: str) -> object:
    # Old names of the flat module this subpackage replaced (bayes_alliance.compat).
    from bayes_alliance.compat import moved_name

    return moved_name(__name__, name)
