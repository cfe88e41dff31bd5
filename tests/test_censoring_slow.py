"""Recovery with a censored predictor over seeds (slow; `make test-slow`).

Eight data sets (seeds 1-8; 12 therapists x 6 patients x 15 sessions; autoregressions .5,
state effect -.3), the predictor censored at its 80th percentile (20% of its scores at the
ceiling), each fitted with the ceiling as censoring and naively (ceiling scores as exact). With
censoring the truths of the predictor's autoregression, the state effect and the predictor's
innovation SD must lie inside their 90% intervals at about the promised rate (at least 20 of the
24 intervals); naively the predictor's innovation SD is shrunk: its posterior mean lies below
the truth in every fit, and below the censored fit's.
"""

from __future__ import annotations

import pytest

from tests.test_censoring import censored_example, fit_both

pytestmark = pytest.mark.slow

CHECKED = ("predictor_autoregression", "state_effect", "innovation_sd_predictor")


@pytest.fixture(scope="module")
def runs():
    out = []
    for seed in range(1, 9):
        data, truth, ceiling = censored_example(seed)
        out.append((truth.params, fit_both(data, ceiling, seed, draws=1000)))
    return out


def test_censored_model_covers_the_truth(runs):
    inside = []
    for p, s in runs:
        print(  # shown with `pytest -s`: truth, naive and censored means per fit
            "  ".join(
                f"{name} {getattr(p, name):+.3f} naive {s[False].loc[name, 'mean']:+.3f} "
                f"censored {s[True].loc[name, 'mean']:+.3f}"
                for name in CHECKED
            )
        )
        for name in CHECKED:
            true = getattr(p, name)
            inside.append(s[True].loc[name, "ci_low"] <= true <= s[True].loc[name, "ci_high"])
    assert sum(inside) >= 20, f"{sum(inside)} of {len(inside)} intervals cover the truth"


def test_naive_fit_shrinks_the_innovation_sd(runs):
    for p, s in runs:
        naive = s[False].loc["innovation_sd_predictor", "mean"]
        assert naive < p.innovation_sd_predictor
        assert naive < s[True].loc["innovation_sd_predictor", "mean"]
