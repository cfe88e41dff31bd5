"""Calibration over replications (slow: `make test-slow`).

Each replication draws a new data set from the same population and fits it; the share of 90%
intervals that contain the truth estimates the frequentist coverage.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.fit import fit
from bayes_alliance.spec import ModelSpec
from tests.conftest import RECOVERY_SETTINGS

pytestmark = pytest.mark.slow

N_REPLICATIONS = int(os.environ.get("BAYES_ALLIANCE_REPLICATIONS", "20"))
NAMES = [
    "state_effect",
    "reverse_state_effect",
    "outcome_autoregression",
    "predictor_autoregression",
]
SETTINGS = RECOVERY_SETTINGS  # the design of the fast recovery test, replicated


def _one(seed: int, spec: ModelSpec | None = None, settings: dict | None = None) -> dict:
    warnings.simplefilter("ignore")
    df, truth = simulate(seed=seed, **(settings or SETTINGS))
    data = SessionData.from_frame(df, **EXAMPLE_ROLES)
    r = fit(data, spec, draws=500, tune=500, random_seed=seed, progressbar=False)
    s = r.summary(ci_prob=0.90, ci_kind="eti")
    return {
        n: (s.loc[n, "ci_low"], s.loc[n, "mean"], s.loc[n, "ci_high"], s.loc[n, "sd"])
        for n in s.index
    } | {"truth": {n: getattr(truth.params, n) for n in s.index if hasattr(truth.params, n)}}


def test_coverage_of_90_intervals_over_replications():
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(_one, range(1000, 1000 + N_REPLICATIONS)))
    report = []
    for name in NAMES:
        truth = runs[0]["truth"][name]
        inside = [lo <= truth <= hi for lo, _, hi, _ in (r[name] for r in runs)]
        z = [(m - truth) / sd for _, m, _, sd in (r[name] for r in runs)]
        bias = np.mean([r[name][1] for r in runs]) - truth
        report.append(
            f"{name}: coverage {np.mean(inside):.2f}, mean z {np.mean(z):+.2f}, bias {bias:+.4f}"
        )
        print(report[-1])
    for name in NAMES:
        truth = runs[0]["truth"][name]
        cover = np.mean([r[name][0] <= truth <= r[name][2] for r in runs])
        assert 0.8 <= cover <= 1.0, report
        # Bias bound: a tenth of the typical posterior SD would be invisible here; 0.5 SD is not.
        sd = np.mean([r[name][3] for r in runs])
        assert abs(np.mean([r[name][1] for r in runs]) - truth) < 0.5 * sd, report


def _slopes(seed: int) -> dict:
    settings = dict(
        SETTINGS,
        n_therapists=40,
        sessions=15,
        sd_state_effect_patient=0.12,
        sd_state_effect_therapist=0.08,
    )
    return _one(seed, ModelSpec(random_slopes=("patient", "therapist")), settings)


def test_random_slopes_recovered():
    """Six replications: each slope SD's 90% interval covers the truth in at least 4 of 6, and
    the average posterior mean is within 30% of the truth."""
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(_slopes, range(70, 76)))
    for name, true in (("sd_state_effect_patient", 0.12), ("sd_state_effect_therapist", 0.08)):
        inside = [r[name][0] <= true <= r[name][2] for r in runs]
        means = [r[name][1] for r in runs]
        print(
            f"{name}: truth {true}, covered {sum(inside)}/6, posterior means {np.round(means, 3).tolist()}"
        )
        assert sum(inside) >= 4
        assert abs(np.mean(means) - true) < 0.3 * true
