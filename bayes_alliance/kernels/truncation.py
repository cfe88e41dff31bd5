"""PyTensor pieces of a truncated normal prior: the log of a standard normal's mass between two
bounds, accurate (value and gradient) however far in either tail, and the open-interval test.
The model's stationarity truncation of the slope deviations (:mod:`bayes_alliance.model.within`)
adds ``-log_normal_mass`` per truncated deviation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt

SQRT2 = float(np.sqrt(2.0))


def log_upper_tail(z: Any) -> Any:
    """log Q(z) = log(1 - Phi(z)) for z >= 0, through the scaled complementary error function
    (accurate however far in the tail)."""
    return pt.log(0.5 * pt.erfcx(z / SQRT2)) - 0.5 * z * z


def log_normal_mass(lo_z: Any, hi_z: Any) -> Any:
    """log(Phi(hi_z) - Phi(lo_z)) for the standard normal CDF, in log space so that it stays
    accurate (value and gradient) for intervals far in either tail.

    Each case is evaluated on inputs made safe for it, so that the cases a switch does not
    choose are finite and their zero gradients stay zero.
    """
    right = pt.ge(lo_z, 0.0)  # the interval lies in the upper tail
    left = pt.le(hi_z, 0.0)  # in the lower tail (mirrored to the upper one)
    mid = ~(right | left)
    a = pt.switch(right, lo_z, pt.switch(left, -hi_z, 0.0))
    b = pt.switch(right, hi_z, pt.switch(left, -lo_z, 1.0))
    tail = log_upper_tail(a) + pt.log1mexp(log_upper_tail(b) - log_upper_tail(a))
    hi_m = pt.switch(mid, hi_z, 1.0)
    lo_m = pt.switch(mid, lo_z, -1.0)
    centre = pt.log1p(-(pt.exp(log_upper_tail(hi_m)) + pt.exp(log_upper_tail(-lo_m))))
    return pt.switch(mid, centre, tail)


def inside(value: Any, lo: Any, hi: Any) -> Any:
    """Whether ``lo < value < hi``, elementwise (a boolean tensor)."""
    return pt.and_(pt.gt(value, lo), pt.lt(value, hi))


__all__ = ["inside", "log_normal_mass", "log_upper_tail"]
