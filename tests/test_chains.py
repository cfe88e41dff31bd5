"""Why a convergence check fails: hand-made chains with a known situation (two modes, an SD
collapsing to 0, a slow AR(1) chain) must be told apart, and only slow mixing sent to "run
longer"."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayes_alliance.core import chains
from bayes_alliance.core.diagnostics import check_convergence

N_CHAINS, N_DRAWS = 4, 1000


def _tree(draws: dict[str, np.ndarray]) -> xr.DataTree:
    """A DataTree like a fit's: posterior and sampler statistics (no divergences, energy
    with a healthy E-BFMI)."""
    rng = np.random.default_rng(0)
    post = xr.Dataset({k: (("chain", "draw"), val) for k, val in draws.items()})
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((N_CHAINS, N_DRAWS), bool)),
            "energy": (("chain", "draw"), rng.normal(size=(N_CHAINS, N_DRAWS))),
        }
    )
    return xr.DataTree(
        children={"posterior": xr.DataTree(post), "sample_stats": xr.DataTree(stats)}
    )


def _mixing(rng: np.random.Generator, loc: float = 0.0) -> np.ndarray:
    return loc + rng.normal(size=(N_CHAINS, N_DRAWS))


def _two_modes(rng: np.random.Generator) -> np.ndarray:
    """Two chains near -2, two near +2, each independent draws (mixing perfectly in place)."""
    centre = np.array([-2.0, -2.0, 2.0, 2.0])[:, None]
    return centre + 0.5 * rng.normal(size=(N_CHAINS, N_DRAWS))


def _collapsing(rng: np.random.Generator) -> np.ndarray:
    """An SD of prior scale 1: two chains around 0.5, two whose log-SD drifts to 1e-6."""
    ok = np.abs(0.5 + 0.1 * rng.normal(size=(2, N_DRAWS)))
    path = np.exp(np.linspace(np.log(0.5), np.log(1e-6), N_DRAWS))
    bad = path * np.exp(0.1 * rng.normal(size=(2, N_DRAWS)))
    return np.concatenate([ok, bad])


def _slow(rng: np.random.Generator, phi: float = 0.995) -> np.ndarray:
    """AR(1) chains with lag-1 correlation ``phi`` started from the stationary law: each chain's
    ESS is about N (1 - phi) / (1 + phi) = 2.5, they drift, and more draws would help."""
    x = np.empty((N_CHAINS, N_DRAWS))
    x[:, 0] = rng.normal(size=N_CHAINS)
    e = rng.normal(size=(N_CHAINS, N_DRAWS)) * np.sqrt(1 - phi**2)
    for t in range(1, N_DRAWS):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


@pytest.mark.parametrize("seed", range(5))
def test_each_situation_is_named(seed: int) -> None:
    rng = np.random.default_rng(seed)
    draws = {
        "state_effect": _two_modes(rng),
        "sd_patient_outcome": _collapsing(rng),
        "outcome_autoregression": _slow(rng),
        "intercept_outcome": _mixing(rng),
    }
    found = {f.parameter: f.kind for f in chains.diagnose(draws, {"sd_patient_outcome": 1.0})}
    assert found == {"state_effect": chains.MODES, "sd_patient_outcome": chains.COLLAPSE}

    conv = check_convergence(_tree(draws), list(draws), {"sd_patient_outcome": 1.0})
    assert conv.situations == {
        chains.MODES: ["state_effect"],
        chains.COLLAPSE: ["sd_patient_outcome"],
        chains.SLOW: ["outcome_autoregression"],
    }
    text = conv.message()
    assert "different modes for state_effect" in text
    assert "sd_patient_outcome head(s) to 0" in text
    # With a mode split and a collapse, no "run longer": it cures neither.
    assert "times the draws" not in text


@pytest.mark.parametrize("seed", range(5))
def test_slow_chains_alone_are_sent_to_run_longer(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    draws = {"outcome_autoregression": _slow(rng), "intercept_outcome": _mixing(rng)}
    assert chains.diagnose(draws) == []
    conv = check_convergence(_tree(draws), list(draws))
    assert conv.situations == {chains.SLOW: ["outcome_autoregression"]}
    assert "Slow mixing (outcome_autoregression): run longer" in conv.message()


@pytest.mark.parametrize("seed", range(5))
def test_no_false_alarm_for_well_mixing_or_small_sds(seed: int) -> None:
    """Well-mixing chains, and an SD whose posterior has honest mass near 0 (half-normal of
    scale 0.1 against a prior scale of 1: 0.8% of draws below 0.001), are no finding."""
    rng = np.random.default_rng(200 + seed)
    draws = {
        "state_effect": _mixing(rng, 0.3),
        "sd_therapist_outcome": np.abs(0.1 * rng.normal(size=(N_CHAINS, N_DRAWS))),
    }
    assert chains.diagnose(draws, {"sd_therapist_outcome": 1.0}) == []
    assert check_convergence(_tree(draws), list(draws), {"sd_therapist_outcome": 1.0}).ok


def test_collapse_without_a_prior_scale_and_vector_entries() -> None:
    """Without a prior scale an SD is measured against its own draws; a vector parameter's
    entries are named ``name[i]``."""
    rng = np.random.default_rng(3)
    stacked = np.stack([_mixing(rng), _two_modes(rng)], axis=-1)
    found = chains.diagnose({"first_sd_outcome": _collapsing(rng), "moderator_effect": stacked})
    assert [(f.kind, f.parameter) for f in found] == [
        (chains.COLLAPSE, "first_sd_outcome"),
        (chains.MODES, "moderator_effect[1]"),
    ]


def test_scale_names() -> None:
    scales = ["sd_patient_outcome", "first_sd_predictor", "innovation_sd_outcome", "sd_path_x"]
    assert all(chains.is_scale(n) for n in scales)
    assert not any(chains.is_scale(n) for n in ["state_effect", "innovation_corr", "sdx"])


def test_vector_entries_are_named_as_the_summary_names_them() -> None:
    """An entry of a vector parameter in two modes is reported under the summary's row name
    (its coordinate), with the other entry left alone."""
    rng = np.random.default_rng(4)
    both = np.stack([_mixing(rng), _two_modes(rng)], axis=-1)
    tree = _tree({"state_effect": _mixing(rng)})
    tree["posterior"]["moderator_effect"] = xr.DataArray(
        both, dims=("chain", "draw", "moderator"), coords={"moderator": ["age", "dose"]}
    )
    conv = check_convergence(tree, ["state_effect", "moderator_effect"])
    assert conv.situations == {chains.MODES: ["moderator_effect[dose]"]}


def test_an_effect_per_sd_is_not_a_scale() -> None:
    # an effect per SD can sit at 0 without any variance collapsing
    assert not chains.is_scale("end_change_per_sd")
    assert chains.is_scale("sd_trend") and chains.is_scale("measurement_error_sd[mediator]")
    assert chains.is_scale("end_sd")


def _slow_innovation_sd() -> xr.DataTree:
    """Two chains in which innovation_sd_predictor is an AR(1) with rho 0.98 (bulk ESS about 5
    of 800 draws): slow mixing, no second mode, no collapse."""
    rng = np.random.default_rng(0)
    walk = np.zeros((2, 400))
    for t in range(1, 400):
        walk[:, t] = 0.98 * walk[:, t - 1] + np.sqrt(1 - 0.98**2) * rng.normal(size=2)
    post = xr.Dataset(
        {
            "innovation_sd_predictor": (("chain", "draw"), 1.0 + 0.05 * walk),
            "state_effect": (("chain", "draw"), rng.normal(size=(2, 400))),
        }
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 400), dtype=bool))})
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def test_measurement_error_advice_only_for_a_fit_with_that_term():
    # the advice once said "fit without --measurement-error" to fits that never had it
    from bayes_alliance.inference.fit import convergence_of
    from bayes_alliance.spec.model_spec import ModelSpec

    tree = _slow_innovation_sd()
    names = ["innovation_sd_predictor", "state_effect"]
    without = check_convergence(tree, names)
    assert without.situations == {"slow": ["innovation_sd_predictor"]}
    assert not any("measurement-error" in a or "measurement error" in a for a in without.advice)
    with_error = check_convergence(tree, names, measurement_error=True)
    assert any("--measurement-error" in a for a in with_error.advice)
    # the joint model's check reads it from the spec
    plain = convergence_of(tree, ModelSpec())
    assert not any("measurement" in a for a in plain.advice)
    assert any(
        "measurement" in a for a in convergence_of(tree, ModelSpec(measurement_error=True)).advice
    )
