"""Reports: labelled tables, figures, path diagrams, the model and methods in words, rendered to HTML, Markdown and LaTeX."""


def __getattr__(name: str) -> object:
    # Old names of the flat module this subpackage replaced (bayes_alliance.compat).
    from bayes_alliance.compat import moved_name

    return moved_name(__name__, name)
