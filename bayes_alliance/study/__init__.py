"""Simulation and method-comparison studies: study files, seeded tasks, the Dask runner, summaries and their report."""
