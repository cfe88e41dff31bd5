"""The mechanism models' stationarity rows on hand-made draws (eigenvalues worked by hand)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayes_alliance.mechanisms.effect_draws import stationarity


class _Data:
    roles = ("predictor", "outcome")


def _post(lags: list[list[list[float]]], deviation: np.ndarray | None = None) -> xr.Dataset:
    lag = np.asarray(lags, dtype=float)[None]  # (chain 1, draw, 2, 2)
    out = {"lag": (("chain", "draw", "series", "series_from"), lag)}
    if deviation is not None:
        out["path_deviation"] = (("chain", "draw", "patient", "path"), deviation[None])
    return xr.Dataset(out, coords={"path": ["outcome<-predictor"]})


def test_stationary_uses_the_eigenvalues_not_the_diagonal():
    # [[0.5, 0.9], [0.9, 0.5]] has eigenvalues 0.5 +- 0.9 = 1.4 and -0.4: explosive although
    # both autoregressions are 0.5; [[0.5, 0.3], [0.3, 0.5]]: 0.8 and 0.2; a triangular
    # [[0.95, 5], [0, 0.9]]: 0.95 and 0.9, stationary whatever its cross-lag.
    post = _post([[[0.5, 0.9], [0.9, 0.5]], [[0.5, 0.3], [0.3, 0.5]], [[0.95, 5.0], [0.0, 0.9]]])
    rows = stationarity(post, _Data())  # type: ignore[arg-type]
    np.testing.assert_array_equal(rows["stationary"], [[0.0, 1.0, 1.0]])
    assert "stationary_patients" not in rows


def test_stationary_patients_counts_each_patients_own_lag_matrix():
    # Average [[0.5, 0.3], [0.3, 0.5]]; the random path is lag[outcome, predictor] (entry [1,
    # 0]). A patient with deviation d has eigenvalues 0.5 +- sqrt(0.3 (0.3 + d)): stationary
    # while 0.3 (0.3 + d) < 0.25, i.e. d < 0.5333; explosive at d = 0.6 (0.5 + 0.5196).
    dev = np.array([[[0.0], [0.5], [0.6], [-0.2]], [[0.6], [0.6], [0.6], [0.0]]])
    post = _post([[[0.5, 0.3], [0.3, 0.5]], [[0.5, 0.3], [0.3, 0.5]]], dev)
    rows = stationarity(post, _Data())  # type: ignore[arg-type]
    np.testing.assert_array_equal(rows["stationary"], [[1.0, 1.0]])
    np.testing.assert_allclose(rows["stationary_patients"], [[0.75, 0.25]])
