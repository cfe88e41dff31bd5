"""The state-pattern rules on hand-made series, probabilities as shares of draws, and the
outcome difference with classification uncertainty (bayes_alliance.analysis.patterns,
bayes_alliance.analysis.pattern_outcome, bayes_alliance.sim.patterns)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.analysis import pattern_outcome as po
from bayes_alliance.analysis import pattern_table as ptab
from bayes_alliance.analysis import patterns as pat
from bayes_alliance.sim import patterns as sim

T = np.arange(1, 13)


def one(series: np.ndarray) -> np.ndarray:
    return np.asarray(series, dtype=float)[None, :]  # one draw


def test_clean_rupture_detected_at_its_sessions() -> None:
    w = np.zeros(12)
    w[5:7] = -3.5  # sessions 6 and 7
    got = pat.rupture_repair(one(w), T, 1.0)[0]
    assert list(T[got]) == [6, 7]
    w1 = np.zeros(12)
    w1[4] = -3.0  # exactly the threshold: a one-session rupture at session 5
    assert list(T[pat.rupture_repair(one(w1), T, 1.0)[0]]) == [5]


def test_rupture_thresholds_respected() -> None:
    w = np.zeros(12)
    w[5] = -2.9  # below rupture_drop = 3
    assert not pat.rupture_repair(one(w), T, 1.0).any()
    assert pat.rupture_repair(one(w), T, 1.0, pat.PatternThresholds(rupture_drop=2.5)).any()
    assert not pat.rupture_repair(one(w), T, 2.0, pat.PatternThresholds(rupture_drop=2.5)).any()
    long = np.zeros(12)
    long[4:7] = -4  # three sessions: longer than rupture_max_length
    assert not pat.rupture_repair(one(long), T, 1.0).any()
    assert pat.rupture_repair(one(long), T, 1.0, pat.PatternThresholds(rupture_max_length=3)).any()
    partial = np.zeros(12)
    partial[5] = -4
    partial[6:] = -1.5  # recovers only to 1.5 below the earlier level (tolerance 1)
    assert not pat.rupture_repair(one(partial), T, 1.0).any()
    gap = np.zeros(12)
    gap[5] = -4
    gap[6] = np.nan  # the recovery session is missing: not detected
    assert not pat.rupture_repair(one(gap), T, 1.0).any()


def test_noisy_flat_series_shows_no_pattern() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.3, (200, 15))  # well inside the unit of 1
    ind = pat.pattern_indicators(w, np.arange(15), 1.0)
    for name in pat.PATTERNS:
        assert not ind[name].any(), name


def test_linear_rules() -> None:
    w = 0.5 * (T - T.mean())  # change 5.5 over the series
    assert pat.linear_change(one(w), T)[0] == pytest.approx(5.5)
    assert pat.strengthening(one(w), T, 2.0)[0] and not pat.weakening(one(w), T, 2.0)[0]
    assert not pat.strengthening(one(w), T, 3.0)[0]  # 5.5 < 2 x 3
    assert pat.weakening(one(-w), T, 2.0)[0]
    short = np.full(12, np.nan)
    short[:4] = w[:4]
    assert not pat.strengthening(one(short), T, 0.01)[0]  # fewer than min_sessions


def test_u_shape_rule() -> None:
    u = (T - 6.5) ** 2 / 10  # ends 3.025 above the minimum, minimum in the middle
    assert pat.u_dip(one(u), T)[0] == pytest.approx(3.025)
    assert pat.u_shape(one(u), T, 2.0)[0]  # 3.025 >= 1.5 x 2
    assert not pat.u_shape(one(u), T, 2.1)[0]
    edge = (T - 11.0) ** 2 / 10  # minimum near the end: not inside the middle 60 %
    assert not pat.u_shape(one(edge), T, 0.1)[0]
    assert not pat.u_shape(one(-u), T, 0.1)[0]  # inverted U


def test_sudden_gain_rule() -> None:
    w = np.zeros(12)
    w[6:] = 3.0  # arrives at session 7
    w += np.tile([0.1, -0.1], 6)
    got = pat.sudden_gains(one(w), T, 1.0)[0]
    assert list(T[got]) == [7]
    small = np.where(np.arange(12) >= 6, 2.0, 0.0) + np.tile([0.1, -0.1], 6)
    assert not pat.sudden_gains(one(small), T, 1.0).any()  # below gain_size = 2.5
    reversed_ = w.copy()
    reversed_[7] = 0.5  # lost more than half of the gain the next session
    assert not pat.sudden_gains(one(reversed_), T, 1.0).any()
    noisy = w.copy()
    noisy[3:6] = [-3.0, 3.0, -3.0]  # jumpy before: the t criterion fails
    assert not pat.sudden_gains(one(noisy), T, 1.0)[0, 6]


def test_probabilities_are_shares_of_draws() -> None:
    w = np.zeros(12)
    w[5] = -4.0
    # the drop is 4: a rupture when the unit is below 4/3
    scale = np.array([1.0, 1.2, 1.5, 2.0])
    draws = np.broadcast_to(w, (4, 12))
    p = pat.pattern_probabilities(draws, T, scale)
    assert p["rupture_repair"] == pytest.approx(0.5)
    assert p["rupture_sessions"][5] == pytest.approx(0.5)
    assert p["rupture_sessions"].sum() == pytest.approx(0.5)
    batch = pat.pattern_probabilities(np.stack([draws, draws * 0]), T, scale)
    assert batch["rupture_repair"].tolist() == [0.5, 0.0]


def test_fluctuation_sd_is_robust() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (1, 4000))
    assert pat.fluctuation_sd(w)[0] == pytest.approx(1.0, rel=0.06)
    w[0, 100] = 50.0
    assert pat.fluctuation_sd(w)[0] == pytest.approx(1.0, rel=0.06)


def test_planted_series_detected() -> None:
    rng = np.random.default_rng(5)
    for name in pat.PATTERNS:
        w = np.stack([sim.planted_series(name, 15, rng, size=8.0)[0] for _ in range(20)])
        ind = pat.pattern_indicators(w[:, None, :], np.arange(15), 1.0)
        # a repair is judged against one noisy pre-drop session, which caps the rate of even a
        # huge, fully repaired rupture near 0.8 at the default tolerance
        assert ind[name].mean() >= 0.6, name


def test_feedback_patterns_on_a_hand_made_series() -> None:
    sessions = np.arange(1, 16)
    w = np.tile([0.1, -0.1], 8)[:15]
    w[3] -= 4.0  # a one-session rupture at session 4, repaired at 5
    w[9:] += 3.0  # a sudden gain arriving at session 10
    scale = np.array([1.0, 1.0, 2.0, 2.0])  # with a unit of 2 neither change is large enough
    fb = ptab.feedback_patterns(np.broadcast_to(w, (4, 15)), sessions, scale)
    assert json.loads(json.dumps(fb)) == fb  # JSON-ready: built-in types only
    assert set(fb) == {
        "n_draws",
        "n_sessions",
        "patterns",
        "rupture_sessions",
        "sudden_gain_sessions",
        "thresholds",
        "calibration",
    }
    assert (fb["n_draws"], fb["n_sessions"]) == (4, 15)
    assert list(fb["patterns"]) == list(pat.PATTERNS)
    assert fb["patterns"]["rupture_repair"] == pytest.approx(0.5)
    assert fb["patterns"]["sudden_gain"] == pytest.approx(0.5)
    assert fb["patterns"]["u_shape"] == 0.0
    assert fb["rupture_sessions"] == [{"session": 4, "probability": 0.5}]
    assert fb["sudden_gain_sessions"] == [{"session": 10, "probability": 0.5}]
    assert fb["thresholds"]["rupture_drop"] == pat.DEFAULT.rupture_drop
    own = ptab.feedback_patterns(w[None, :], sessions, None)  # its own unit is about 0.2
    assert own["patterns"]["rupture_repair"] == own["patterns"]["sudden_gain"] == 1.0
    lower = ptab.feedback_patterns(-w[None, :], sessions, 1.0)  # lower is better: pass -states
    assert lower["patterns"]["sudden_gain"] == 0.0 and lower["sudden_gain_sessions"] == []
    with pytest.raises(ValueError, match="one patient"):
        ptab.feedback_patterns(w[None, None, :], sessions, 1.0)


def test_thresholds_checked() -> None:
    with pytest.raises(ValueError, match="rupture_drop"):
        pat.PatternThresholds(rupture_drop=0)
    with pytest.raises(ValueError, match="repair_tolerance"):
        pat.PatternThresholds(repair_tolerance=5.0)


def _outcome_data(seed: int, n: int = 400, effect: float = 1.0):
    rng = np.random.default_rng(seed)
    prob = rng.beta(0.6, 0.6, n)  # calibrated posterior probabilities of the pattern
    label = rng.random(n) < prob  # the truth, drawn from them
    z = rng.normal(size=n)
    y = 0.5 + effect * label + 0.4 * z + rng.normal(0, 1, n)
    draws = rng.random((400, n)) < prob  # per-draw indicators from the same probabilities
    return prob, label, z, y, draws


def test_outcome_difference_joint_recovers_known_effect() -> None:
    _, label, z, y, draws = _outcome_data(11)
    res = po.pattern_outcome_difference(draws, y, z, seed=1)
    s = res.summary()
    assert s["low"] < 1.0 < s["high"]
    assert s["mean"] == pytest.approx(1.0, abs=0.3)
    hard = po.pattern_outcome_difference(np.broadcast_to(label, draws.shape), y, z, seed=1)
    # the uncertain classification widens the posterior compared with knowing the labels
    assert s["sd"] > hard.summary()["sd"]


def test_outcome_difference_compose() -> None:
    _, label, z, y, draws = _outcome_data(12)
    certain = po.pattern_outcome_difference(
        np.broadcast_to(label, draws.shape), y, z, method="compose", seed=2
    )
    x = np.column_stack([np.ones(len(y)), label, z])
    ols = np.linalg.lstsq(x, y, rcond=None)[0][1]
    assert certain.summary()["mean"] == pytest.approx(ols, abs=0.02)
    assert certain.summary()["low"] < 1.0 < certain.summary()["high"]
    noisy = po.pattern_outcome_difference(draws, y, z, method="compose", seed=2)
    # a regression on uncertain labels estimates an attenuated difference (documented)
    assert 0 < noisy.summary()["mean"] < certain.summary()["mean"]
    empty = np.zeros_like(draws)
    res = po.pattern_outcome_difference(empty, y, method="compose", seed=2)
    assert np.isnan(res.draws).all()  # no patient with the pattern: no difference


class _FakeResult:
    """The parts of a FitResult that patterns_table reads: data ids and sessions, the posterior's
    innovation SD, its spec (no lag-0 path: the unit is that SD), and states(patients)."""

    def __init__(self, states: np.ndarray, innovation_sd: np.ndarray) -> None:
        import types

        import xarray as xr

        from bayes_alliance import ModelSpec

        self.spec = ModelSpec()

        n_p, n_s = states.shape[2:]
        self._ids = [f"p{i}" for i in range(n_p)]
        self.data = types.SimpleNamespace(
            patients=np.array(self._ids), coords={"session": np.arange(1, n_s + 1)}
        )
        post = xr.Dataset({"innovation_sd_predictor": (("chain", "draw"), innovation_sd)})
        self.idata = types.SimpleNamespace(posterior=post)
        self._states = xr.DataArray(
            states,
            dims=("chain", "draw", "patient", "session"),
            coords={"patient": self._ids, "session": np.arange(1, n_s + 1)},
        )
        self.calls: list[list[object]] = []

    def states(self, patients):
        import xarray as xr

        self.calls.append(list(patients))
        da = self._states.sel(patient=list(patients))
        return xr.Dataset({"state_predictor": da, "state_outcome": da})


def test_patterns_table_from_a_fit_in_chunks() -> None:
    rng = np.random.default_rng(4)
    n_s = 12
    w = rng.normal(0, 0.2, (2, 50, 3, n_s))
    w[:, :, 0, 5] -= 4.0  # patient p0: a one-session rupture at session 6
    w[:, :, 1, 6:] += 4.0  # patient p1: a sudden gain at session 7
    sd = np.full((2, 50), 1.0)
    sd[1] = 2.0  # in half the draws the unit is 2: the 4-point changes are not large enough
    res = _FakeResult(w, sd)
    tab = ptab.patterns_table(res, chunk=2, calibration="fixed")  # type: ignore[arg-type]
    assert res.calls == [["p0", "p1"], ["p2"]]
    assert tab["patient"].tolist() == ["p0", "p1", "p2"]
    assert tab.loc[0, "p_rupture_repair"] == pytest.approx(0.5)
    assert tab.loc[0, "rupture_sessions"] == "6"
    assert tab.loc[1, "p_sudden_gain"] == pytest.approx(0.5)
    assert tab.loc[1, "sudden_gain_session"] == 7
    assert tab.loc[2, ["p_rupture_repair", "p_sudden_gain"]].tolist() == [0.0, 0.0]
    assert pd.isna(tab.loc[2, "sudden_gain_session"])
    worse = ptab.patterns_table(res, ["p1"], higher_is_better=False, calibration="fixed")
    assert worse.loc[0, "p_sudden_gain"] == 0.0  # a rise is a worsening for symptoms
    own = ptab.patterns_table(res, ["p0"], scale="patient", calibration="fixed")
    assert own.loc[0, "p_rupture_repair"] > 0.8  # its own unit (about 0.2) is small
