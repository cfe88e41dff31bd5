"""Recovery with measurement error over seeds (slow; `make test-slow`).

Sixteen data sets (seeds 1-8 with 12 sessions, seeds 11-18 with 20: a seed shared by two
lengths would share its first sessions' draws; 15 therapists x 6 patients; within-person
reliability .75 for both variables; autoregressions .5, state effect -.3), each fitted with and
without the error term. With it, the truths of the two autoregressions, the state effect and
the two error SDs must lie inside their 90% intervals at about the promised rate (at least 80%
of the 80 intervals: with calibrated intervals fewer than 64 of 80 has probability about 0.005)
and the mean error of each lag over the sixteen fits must stay below 0.08 (the model without the
error term is off by about -0.15 in each autoregression; the SE of a mean of sixteen errors is
about 0.025). Without it, the autoregressions are attenuated: the posterior mean is below the
truth in every fit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_alliance import SessionData, simulate
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.fit import fit
from bayes_alliance.spec.model_spec import ModelSpec

pytestmark = pytest.mark.slow

CHECKED = (
    "predictor_autoregression",
    "outcome_autoregression",
    "state_effect",
    "measurement_error_sd_predictor",
    "measurement_error_sd_outcome",
)
LAGS = CHECKED[:3]


@pytest.fixture(scope="module")
def runs():
    out = []
    for sessions, seeds in ((12, range(1, 9)), (20, range(11, 19))):
        for seed in seeds:
            df, truth = simulate(
                seed=seed,
                n_therapists=15,
                patients_per_therapist=6,
                sessions=sessions,
                predictor_autoregression=0.5,
                outcome_autoregression=0.5,
                state_effect=-0.3,
                reliability=0.75,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = SessionData.from_frame(df, **EXAMPLE_ROLES)
                s = {
                    me: fit(
                        data,
                        ModelSpec(measurement_error=me),
                        draws=1000,
                        tune=1000,
                        chains=2,
                        random_seed=seed,
                        progressbar=False,
                    ).summary(ci_prob=0.9)
                    for me in (False, True)
                }
            out.append((sessions, seed, truth.params, s))
    return out


def test_error_model_covers_the_truth(runs):
    inside, errors = [], {n: [] for n in LAGS}
    for sessions, seed, p, s in runs:
        est = s[True]
        for name in CHECKED:
            true = getattr(p, name)
            ok = est.loc[name, "ci_low"] <= true <= est.loc[name, "ci_high"]
            inside.append(ok)
            print(
                f"T={sessions} seed={seed} {name}: truth {true:.3f} mean "
                f"{est.loc[name, 'mean']:.3f} [{est.loc[name, 'ci_low']:.3f}, "
                f"{est.loc[name, 'ci_high']:.3f}] {'in' if ok else 'OUT'}"
            )
        for name in LAGS:
            errors[name].append(est.loc[name, "mean"] - getattr(p, name))
    print(f"coverage {np.mean(inside):.2f} of {len(inside)} 90% intervals")
    assert np.mean(inside) >= 0.8
    for name, err in errors.items():
        print(f"{name}: mean error {np.mean(err):+.3f}")
        assert abs(np.mean(err)) < 0.08, name


def test_model_without_error_is_attenuated(runs):
    for sessions, seed, p, s in runs:
        for name in ("predictor_autoregression", "outcome_autoregression"):
            assert s[False].loc[name, "mean"] < getattr(p, name), (sessions, seed, name)
