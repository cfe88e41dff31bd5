"""Issue 26's convergence target (slow: `make test-slow`): three-level within mediation on the
shipped ``mediation_within.csv`` with its end outcome passes the package's convergence check
(R-hat <= 1.01, ESS >= 100 per chain, no divergences, E-BFMI) at the command line's defaults
(2 chains x 1,000 draws after 1,000 tuning steps) on seeds 1-5, every seed asserted.

Before the two random paths were sampled through their SDs and the eigen square root of their
correlation matrix (:func:`bayes_alliance.mechanisms.parts._two_paths`), seeds 1 and 4 failed
on the correlation of the a and b paths (R-hat 1.015 and 1.021). With that parametrisation and
the level Op (whose rounding differs from the composition's, so the draws differ), seeds 1-5
pass as whole command-line processes (the slowest, ``corr_paths`` on seed 5, at bulk ESS 272);
one earlier run of seed 2, before the level Op, had failed on ``end_change_effect`` (R-hat
1.020, one chain's excursion to small SDs of the patients' changes). The margins are not wide
and the draws depend on rounding, so on another machine a seed may fall on either side
(docs/convergence_and_time.md).
"""

from __future__ import annotations

import warnings

import pytest

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.datasets import MEDIATION_WITHIN_ROLES, load_mediation_within
from bayes_alliance.mechanisms.fit import fit_mechanisms

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data() -> SeriesData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SeriesData.from_frame(load_mediation_within(), **MEDIATION_WITHIN_ROLES)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_three_level_within_mediation_converges_at_the_defaults(data, seed):
    # The defaults of fit_mechanisms are the command line's (2 x 1,000 after 1,000).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_mechanisms(data, random_seed=seed, progressbar=False)
    conv = result.convergence
    assert conv.ok, conv.message()
