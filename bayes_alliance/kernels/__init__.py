"""Numerical kernels (numpy, PyTensor, Numba; never PyMC): the within-person dynamics, population moments, the marginal and Kalman algebra of a series, R-squared components."""
