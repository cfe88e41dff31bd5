"""The shipped centring study reproduces the known pattern (slow: about 60 joint fits).

Observed person-mean centring biases the autoregression by about -(1 + phi) / (T - 1) with T
sessions (Nickell 1981); the latent model does not. Truth from the simulator; the comparison
is over replications, judged against their Monte Carlo SE."""

from __future__ import annotations

import pytest

from bayes_alliance.study.runner import run_study
from bayes_alliance.study.spec import load_study
from bayes_alliance.study.summary import write_summary

pytestmark = pytest.mark.slow


def test_centring_study_shows_the_nickell_bias_and_latent_centring_avoids_it(tmp_path) -> None:
    study = load_study("centring").with_replications(6)
    run_study(study, tmp_path / "s", progress=False)
    s = write_summary(tmp_path / "s").set_index(["sessions", "method", "parameter"])
    phi = 0.4
    for t in (5, 10, 20):
        obs = s.loc[(t, "observed_reml", "outcome_autoregression")]
        lat = s.loc[(t, "latent", "outcome_autoregression")]
        nickell = -(1 + phi) / (t - 1)
        # The approximation is first order in 1/T: allow 25% of it plus 3 Monte Carlo SEs.
        assert abs(obs["bias"] - nickell) < 0.25 * abs(nickell) + 3 * obs["bias_mcse"], (t, obs)
        # The latent model's bias is a fraction of observed centring's, and small in absolute terms.
        assert abs(lat["bias"]) < 0.25 * abs(obs["bias"]) + 2 * lat["bias_mcse"], (t, lat)
        assert abs(lat["bias"]) < 0.05 + 2 * lat["bias_mcse"]
        assert lat["convergence_rate"] >= 0.5
