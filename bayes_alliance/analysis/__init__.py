"""Analyses of fitted results and baselines: model comparison (LOO), per-patient densities, state patterns, classic two-step methods and REML."""
