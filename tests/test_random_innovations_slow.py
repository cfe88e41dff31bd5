"""Recovery of random innovation variances over seeds (slow; `make test-slow`).

Eight data sets (seeds 1-4 with 12 sessions, 11-14 with 20; 15 therapists x 6 patients; SD of
the log innovation SD .4 for alliance and .3 for symptoms; the other values the simulator's
defaults), each fitted with ``random_innovations=("patient",)``. The truths of the two log-SD
SDs, the two (median) innovation SDs and the state effect must lie inside their 90% intervals in
at least 80% of the 40 intervals (with calibrated intervals fewer than 32 of 40 has probability
about 0.04), and the mean error of each log-SD SD over the eight fits must stay below 0.08.
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
    "sd_log_innovation_predictor_patient",
    "sd_log_innovation_outcome_patient",
    "innovation_sd_predictor",
    "innovation_sd_outcome",
    "state_effect",
)


@pytest.fixture(scope="module")
def runs():
    out = []
    for sessions, seeds in ((12, range(1, 5)), (20, range(11, 15))):
        for seed in seeds:
            df, truth = simulate(
                seed=seed,
                n_therapists=15,
                patients_per_therapist=6,
                sessions=sessions,
                sd_log_innovation_predictor_patient=0.4,
                sd_log_innovation_outcome_patient=0.3,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = SessionData.from_frame(df, **EXAMPLE_ROLES)
                result = fit(
                    data,
                    ModelSpec(random_innovations=("patient",)),
                    random_seed=seed,
                    progressbar=False,
                )
            out.append((sessions, seed, truth.params, result.summary(ci_prob=0.9)))
    return out


def test_random_innovation_sds_recovered(runs):
    inside, errors = [], {n: [] for n in CHECKED[:2]}
    for sessions, seed, p, s in runs:
        for name in CHECKED:
            true = getattr(p, name)
            ok = s.loc[name, "ci_low"] <= true <= s.loc[name, "ci_high"]
            inside.append(ok)
            print(
                f"T={sessions} seed={seed} {name}: truth {true:.3f} mean {s.loc[name, 'mean']:.3f} "
                f"[{s.loc[name, 'ci_low']:.3f}, {s.loc[name, 'ci_high']:.3f}] "
                f"{'in' if ok else 'OUT'} (ESS {s.loc[name, 'ess_bulk']:.0f})"
            )
        for name in errors:
            errors[name].append(s.loc[name, "mean"] - getattr(p, name))
    print(f"coverage {np.mean(inside):.2f} of {len(inside)} 90% intervals")
    assert np.mean(inside) >= 0.8
    for name, err in errors.items():
        print(f"{name}: mean error {np.mean(err):+.3f}")
        assert abs(np.mean(err)) < 0.08, name
