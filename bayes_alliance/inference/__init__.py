"""Sampling and results: the sampler entry, the compiled-model cache, post-hoc draws, predictive replicates, saving and loading, and ``fit_frame``."""
