"""The unit of the fixed pattern rules is each variable's one-step SD: the SD of its
prediction error one session ahead. With a lag-0 path the predicted variable's differs from its
structural innovation SD; the truth here is the residual SD of a least-squares regression of
each variable on the previous session in a long simulated structural series."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from bayes_alliance import ModelSpec
from bayes_alliance.analysis.pattern_table import innovation_scale
from bayes_alliance.core import vocab as v

# Two posterior "draws" of a structural model (one chain): lags, lag-0 effect, innovation SDs.
DRAWS = {
    v.PREDICTOR_AUTOREGRESSION: [0.3, 0.5],
    v.REVERSE_STATE_EFFECT: [-0.1, 0.05],
    v.STATE_EFFECT: [-0.2, 0.1],
    v.OUTCOME_AUTOREGRESSION: [0.4, 0.2],
    v.SAME_SESSION_EFFECT: [0.8, -0.5],
    v.INNOVATION_SD_PREDICTOR: [1.0, 0.7],
    v.INNOVATION_SD_OUTCOME: [0.5, 1.2],
}


def _result(same_session: str) -> SimpleNamespace:
    """What :func:`innovation_scale` reads of a fit: its spec and posterior."""
    post = xr.Dataset({k: (("chain", "draw"), np.array([val])) for k, val in DRAWS.items()})
    tree = xr.DataTree.from_dict({"posterior": post})
    return SimpleNamespace(spec=ModelSpec(same_session=same_session), idata=tree)


def _one_step_sd(draw: int, same_session: str, n: int = 200_000) -> np.ndarray:
    """Residual SDs of x_t and y_t regressed on (x_(t-1), y_(t-1)) in a simulated series of
    the structural model (each equation solved for the session's own values in turn)."""
    p = {k: val[draw] for k, val in DRAWS.items()}
    rng = np.random.default_rng(draw)
    e = rng.standard_normal((n, 2)) * [p[v.INNOVATION_SD_PREDICTOR], p[v.INNOVATION_SD_OUTCOME]]
    w = np.zeros((n, 2))
    a, b = p[v.PREDICTOR_AUTOREGRESSION], p[v.REVERSE_STATE_EFFECT]
    c, d, b0 = p[v.STATE_EFFECT], p[v.OUTCOME_AUTOREGRESSION], p[v.SAME_SESSION_EFFECT]
    for t in range(1, n):
        x_past = a * w[t - 1, 0] + b * w[t - 1, 1] + e[t, 0]
        y_past = c * w[t - 1, 0] + d * w[t - 1, 1] + e[t, 1]
        if same_session == "predictor_to_outcome":
            w[t] = x_past, y_past + b0 * x_past
        else:
            w[t] = x_past + b0 * y_past, y_past
    lagged = np.column_stack([w[:-1], np.ones(n - 1)])
    coef, *_ = np.linalg.lstsq(lagged, w[1:], rcond=None)
    return (w[1:] - lagged @ coef).std(axis=0)


@pytest.mark.parametrize("same_session", ["predictor_to_outcome", "outcome_to_predictor"])
def test_pattern_unit_is_the_one_step_sd_with_a_lag0_path(same_session):
    res = _result(same_session)
    ours = np.stack([innovation_scale(res, w) for w in (v.PREDICTOR, v.OUTCOME)], -1)
    for draw in range(2):
        np.testing.assert_allclose(ours[draw], _one_step_sd(draw, same_session), rtol=0.01)
