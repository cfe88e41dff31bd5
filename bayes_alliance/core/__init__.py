"""The floor every other layer stands on: the vocabulary of dims and parameter names, how problems are reported, atomic output files, convergence diagnostics."""
