"""The one interval function of the package (core/intervals.py), on hand-computed inputs."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_alliance.core.intervals import BAND_KIND, CI_KIND, interval_bounds, interval_name


def test_equal_tailed_bounds_are_the_tail_quantiles():
    # 0, 1, ..., 100: the 5% and 95% quantiles are 5 and 95 (linear interpolation on integers).
    lo, hi = interval_bounds(np.arange(101.0), 0.9, BAND_KIND)
    assert (lo, hi) == pytest.approx((5.0, 95.0), abs=1e-12)


def test_hdi_is_the_narrowest_interval_holding_the_share():
    # ArviZ's HDI spans floor(p n) + 1 sorted draws: of 100 draws at 0.9, 91. With 91 draws
    # at 0 and 9 at 10 the narrowest such interval is [0, 0]; the equal-tailed one reaches 10.
    x = np.r_[np.zeros(91), np.full(9, 10.0)]
    assert interval_bounds(x, 0.9, CI_KIND) == (0.0, 0.0)
    assert interval_bounds(x, 0.9, BAND_KIND)[1] == pytest.approx(10.0)
    # 81 draws spread over [0, 1] and a long right tail of 19: at 0.8 the HDI is [0, 1], where
    # the equal-tailed interval is pulled into the tail.
    y = np.r_[np.linspace(0, 1, 81), np.linspace(5, 20, 19)]
    assert interval_bounds(y, 0.8) == (0.0, 1.0)
    assert interval_bounds(y, 0.8, BAND_KIND)[1] > 5


def test_bounds_along_an_axis_and_bad_arguments():
    x = np.stack([np.arange(101.0), 2 * np.arange(101.0)])
    lo, hi = interval_bounds(x, 0.9, BAND_KIND, axis=-1)
    np.testing.assert_allclose(lo, [5.0, 10.0], atol=1e-12)
    np.testing.assert_allclose(hi, [95.0, 190.0], atol=1e-12)
    with pytest.raises(ValueError, match="kind"):
        interval_bounds(x, 0.9, "central")
    with pytest.raises(ValueError, match="ci_prob"):
        interval_bounds(x, 1.5)
    assert interval_name(0.95) == "95% HDI" and interval_name(0.9, BAND_KIND) == "90% interval"
