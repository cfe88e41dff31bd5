"""Clinician feedback: one patient's update on new sessions without refitting, flags and the feedback page, therapist profiles."""


def __getattr__(name: str) -> object:
    # Old names of the flat module this subpackage replaced (bayes_alliance.compat).
    from bayes_alliance.compat import moved_name

    return moved_name(__name__, name)
