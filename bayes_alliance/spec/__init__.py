"""Model specifications: the model options (:class:`ModelSpec`), the one option table behind the
command line's flags, the spec files' keys and ``fit_frame``'s keywords
(:mod:`~bayes_alliance.spec.options`), and TOML analysis specs
(:mod:`~bayes_alliance.spec.specfile`; the shipped ones are package data in
``bayes_alliance/specs/``)."""

from bayes_alliance.spec.model_spec import ModelSpec

__all__ = ["ModelSpec"]


def __getattr__(name: str) -> object:
    # Old names of the flat module this subpackage replaced (bayes_alliance.compat).
    from bayes_alliance.compat import moved_name

    return moved_name(__name__, name)
