"""Reports: labelled tables, figures, path diagrams, the model and methods in words, rendered to HTML, Markdown and LaTeX."""
