"""Scores at a ceiling or floor (issue 24): censored cells by exact data augmentation.

The exact check: with one censored cell, the model's log density integrated numerically over
the cell's latent score (1-D quadrature over the censored region) equals the censored-data
likelihood computed independently from the dense joint Gaussian of the series,
``log p(others) + log P(cell beyond the limit | others)``, the conditional normal read off the
dense density's quadratic in the cell's value. The other tests: no censored cell changes
nothing, scores beyond a limit are data errors, the pointwise log-likelihood of a censored cell
is the log probability of its event, options and flags, and one simulated data set on which
the censored model covers the predictor's dynamics where the naive fit is biased (the slow test
repeats it over seeds).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import integrate, stats

from bayes_alliance import SessionData, simulate
from bayes_alliance.core.problems import DataValidationError
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference import posthoc, predictive
from bayes_alliance.inference.states import states_of
from bayes_alliance.model.build import build_model
from bayes_alliance.spec import options
from bayes_alliance.spec.model_spec import ModelSpec
from tests import dense
from tests.likelihood_cases import (
    CASES,
    ROWS,
    dense_reference,
    natural_point,
    session_data,
    transformed_point,
)

# In ROWS the largest x is patient B's first session (4.1), the smallest y the same cell (0.2).
CEILING_X, FLOOR_Y = 4.1, 0.2
CELL = ("B", 1)


def _quiet_data(rows, therapist: bool = True) -> SessionData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return session_data(rows, therapist=therapist)


def _with_value(rows, which: str, value: float) -> list:
    col = 3 if which == "predictor" else 4
    out = []
    for r in rows:
        if (r[1], r[2]) == CELL:
            r = tuple(value if k == col else e for k, e in enumerate(r))
        out.append(r)
    return out


def _dense_censored(rows, spec_plain: ModelSpec, nat, which: str, limit: float, side: float):
    """log p(others) + log P(side (cell - limit) >= 0 | others), from the dense Gaussian: the
    density of the others with the cell missing, and the cell's conditional normal from the
    dense log density at three values of the cell (exactly quadratic in it)."""
    three = spec_plain.therapist_level
    others = dense_reference(
        _quiet_data(_with_value(rows, which, np.nan), three), spec_plain, nat, "integrated"
    )
    us = np.array([limit - 1.0, limit, limit + 1.0])
    f = [
        dense_reference(
            _quiet_data(_with_value(rows, which, u), three), spec_plain, nat, "integrated"
        )
        for u in us
    ]
    c2, c1, _ = np.polyfit(us, f, 2)
    var = -1.0 / (2.0 * c2)
    mean = c1 * var
    # the quadratic's constant is log p(others) + the normal's own constant
    assert f[1] == pytest.approx(others + stats.norm.logpdf(limit, mean, np.sqrt(var)), abs=1e-8)
    sd = np.sqrt(var)
    tail = stats.norm.logsf(limit, mean, sd) if side > 0 else stats.norm.logcdf(limit, mean, sd)
    return others + tail


@pytest.mark.parametrize(
    "case, extra",
    [
        ("three levels", {}),
        ("trend", {}),
        ("lag-0 x->y, patient slopes", {}),
        ("three levels", {"measurement_error": True}),
    ],
)
@pytest.mark.parametrize("which", ["predictor", "outcome"])
def test_censored_likelihood_integrates_to_dense(case, extra, which):
    opts = {**CASES[case], **extra}
    three = opts.get("therapist_level", True)
    data = _quiet_data(ROWS, three)
    if which == "predictor":
        bound, side, key = {"ceiling_predictor": CEILING_X}, 1.0, CEILING_X
    else:
        bound, side, key = {"floor_outcome": FLOOR_Y}, -1.0, FLOOR_Y
    spec = ModelSpec(**opts, **bound)
    model = build_model(data, spec)
    assert model.coords[f"censored_{which}_cell"] == (0,)
    nat = natural_point(model, data, spec, np.random.default_rng(5))
    nat[f"censored_{which}_excess"] = np.array([1.0])
    point = transformed_point(model, nat)
    excess_name = model.rvs_to_values[model[f"censored_{which}_excess"]].name
    fn = model.compile_fn(
        model.logp(vars=[model["integrated_series"]]),
        inputs=model.value_vars,
        on_unused_input="ignore",
    )

    def logp(e: float) -> float:
        return float(fn({**point, excess_name: np.array([np.log(e)])}))

    # the completed grid is the data with the cell at limit + side * excess
    plain = ModelSpec(**opts)
    moved = _quiet_data(_with_value(ROWS, which, key + side * 0.7), three)
    assert logp(0.7) == pytest.approx(dense_reference(moved, plain, nat, "integrated"), abs=1e-9)
    top = logp(1e-9)
    mass, _ = integrate.quad(lambda e: np.exp(logp(e) - top), 0.0, np.inf, epsabs=0, epsrel=1e-11)
    ours = top + np.log(mass)
    ref = _dense_censored(ROWS, plain, nat, which, key, side)
    assert ours == pytest.approx(ref, abs=1e-7)


def test_no_censored_cell_no_change():
    """A limit that no score reaches adds no parameter and leaves the likelihood as it was."""
    data = _quiet_data(ROWS)
    plain, far = ModelSpec(), ModelSpec(ceiling_predictor=10.0, floor_outcome=-5.0)
    m0, m1 = build_model(data, plain), build_model(data, far)
    assert [rv.name for rv in m0.free_RVs] == [rv.name for rv in m1.free_RVs]
    assert sorted(m0.named_vars) == sorted(m1.named_vars)
    nat = natural_point(m0, data, plain, np.random.default_rng(5))
    vals = []
    for m in (m0, m1):
        fn = m.compile_fn(m.logp(), inputs=m.value_vars, on_unused_input="ignore")
        vals.append(float(fn(transformed_point(m, nat))))
    assert vals[0] == vals[1]


def test_censoring_routes_complete_series_through_the_filter():
    from tests.likelihood_cases import COMPLETE

    data = _quiet_data(COMPLETE)
    top = float(np.nanmax(data.x))
    assert "moment_n" in build_model(data, ModelSpec()).named_vars
    model = build_model(data, ModelSpec(ceiling_predictor=top))
    assert "gap_first" in model.named_vars and "censored_predictor_excess" in model.named_vars


def test_scores_beyond_a_limit_are_data_errors():
    data = _quiet_data(ROWS)
    with pytest.raises(DataValidationError) as info:
        build_model(data, ModelSpec(ceiling_predictor=3.5, floor_outcome=0.5))
    text = str(info.value)
    assert "column 'x'" in text and "above its ceiling 3.5" in text
    assert "patient B session 1: 4.1" in text
    assert "column 'y'" in text and "below its floor 0.5" in text


@pytest.mark.parametrize(
    "opts, match",
    [
        (dict(traits="sampled", ceiling_predictor=7.0), "needs traits='integrated'"),
        (dict(ceiling_outcome=1.0, floor_outcome=2.0), "must be below"),
        (dict(ceiling_predictor=float("inf")), "must be finite"),
        (dict(floor_predictor="0"), "must be a number"),
    ],
)
def test_spec_checks(opts, match):
    with pytest.raises(ValueError, match=match):
        ModelSpec(**opts)


def test_flags_and_spec_file_keys():
    parser = argparse.ArgumentParser()
    options.MODEL.add_flags(parser)
    args = parser.parse_args(["--ceiling", "7", "--floor-outcome", "0"])
    values = options.MODEL.from_args(args)
    assert values == {"ceiling_predictor": 7.0, "floor_outcome": 0.0}
    args = parser.parse_args(["--ceiling-predictor", "6.5"])
    assert options.MODEL.from_args(args) == {"ceiling_predictor": 6.5}
    assert options.MODEL.check({"ceiling_predictor": 7, "floor_outcome": 0.0}) == {
        "ceiling_predictor": 7.0,
        "floor_outcome": 0.0,
    }
    with pytest.raises(ValueError, match="must be a number"):
        options.MODEL.check({"ceiling_predictor": "7"})
    spec = ModelSpec(ceiling_predictor=7.0)
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def _one_draw_posterior(model, nat, names) -> xr.Dataset:
    out = {}
    for n in names:
        if n in nat and n in model.named_vars:
            val = np.asarray(nat[n], dtype=float)
            out[n] = xr.DataArray(
                val[None, None], dims=("chain", "draw", *model.named_vars_to_dims.get(n, ()))
            )
    return xr.Dataset(out)


def test_pointwise_value_of_a_censored_cell_is_a_probability():
    """Patient B's first session is censored at the ceiling: its pointwise value is
    ``log P(x >= c | M)`` with x ~ N(M_x, F_11) (the stationary first-session variance), not a
    density; the states of the cell are the draw's latent score minus the means; replicates
    never pass the ceiling."""
    data = _quiet_data(ROWS, therapist=False)
    spec = ModelSpec(therapist_level=False, ceiling_predictor=CEILING_X)
    model = build_model(data, spec)
    nat = natural_point(model, data, spec, np.random.default_rng(5))
    nat["censored_predictor_value"] = np.array([CEILING_X + 0.6])
    post = _one_draw_posterior(model, nat, [*posthoc.POSTERIOR_NAMES])
    post_vars, ll = posthoc.complete(post, data, spec, random_seed=1, log_likelihood=True)
    i = list(data.patients).index("B")
    cells = list(zip(*np.nonzero(data.observed_x), strict=True))
    k = cells.index((i, 0))
    mean_x = float(post_vars["trait_predictor"].values[0, 0, i])
    phi = np.array([[0.3, -0.15], [-0.25, 0.4]])
    sx, sy, r = 0.5, 0.4, -0.3
    sigma = np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]])
    f11 = dense.stationary(phi, sigma)[0, 0]
    expected = stats.norm.logsf(CEILING_X, mean_x, np.sqrt(f11))
    assert float(ll["predictor"].values[0, 0, k]) == pytest.approx(expected, rel=1e-10)
    # an uncensored cell keeps its density (here positive log densities are possible)
    state = post_vars["state_predictor"].values[0, 0, i, 0]
    assert state == pytest.approx(CEILING_X + 0.6 - mean_x)
    post = post.assign(post_vars)
    wx, _ = states_of(post, data, spec, np.array([i]))
    assert wx[0, 0, 0, 0] == pytest.approx(state)
    rep = predictive.posterior_predictive(post, data, spec, random_seed=2)
    assert float(rep["predictor"].max()) <= CEILING_X


def test_patient_densities_refused():
    from bayes_alliance.analysis.patient_density import patient_loglik

    data = _quiet_data(ROWS)
    with pytest.raises(ValueError, match="censored"):
        patient_loglik({}, data, ModelSpec(ceiling_predictor=CEILING_X))


def censored_example(
    seed: int, sessions: int = 15, share: float = 0.8, n_therapists: int = 12, patients: int = 6
):
    """A simulated data set with the predictor censored at its ``share`` quantile."""
    df, truth = simulate(
        seed=seed,
        n_therapists=n_therapists,
        patients_per_therapist=patients,
        sessions=sessions,
        predictor_autoregression=0.5,
        outcome_autoregression=0.5,
        state_effect=-0.3,
    )
    col = EXAMPLE_ROLES["predictor"]
    ceiling = float(np.nanquantile(df[col], share))
    df[col] = np.minimum(df[col], ceiling)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
    return data, truth, ceiling


def fit_both(data: SessionData, ceiling: float, seed: int, draws: int) -> dict[bool, pd.DataFrame]:
    from bayes_alliance.inference.fit import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            cens: fit(
                data,
                ModelSpec(ceiling_predictor=ceiling if cens else None),
                draws=draws,
                tune=draws,
                chains=2,
                random_seed=seed,
                progressbar=False,
            ).summary(ci_prob=0.9)
            for cens in (False, True)
        }


def test_censored_fit_recovers_what_the_naive_fit_misses():
    """8 therapists x 5 patients x 12 sessions, the predictor censored at its 80th percentile
    (20% of its scores at the ceiling). Treating the ceiling scores as exact shrinks the
    predictor's innovation SD (seed 3: 0.348, 90% interval [0.328, 0.367], truth 0.4); the
    censored model covers it (0.407 [0.381, 0.435]) and the predictor's autoregression and the
    state effect."""
    data, truth, ceiling = censored_example(3, sessions=12, n_therapists=8, patients=5)
    s = fit_both(data, ceiling, 3, draws=300)
    p = truth.params
    for name in ("predictor_autoregression", "state_effect", "innovation_sd_predictor"):
        true = getattr(p, name)
        lo, hi = s[True].loc[name, "ci_low"], s[True].loc[name, "ci_high"]
        assert lo <= true <= hi, f"{name}: truth {true:.3f} outside [{lo:.3f}, {hi:.3f}]"
    assert s[False].loc["innovation_sd_predictor", "ci_high"] < p.innovation_sd_predictor


def test_save_load_and_compiled_refit(tmp_path):
    """A censored fit saved and loaded recomputes the same post-hoc draws from the stored
    latent scores; a compiled model refits data with as many censored cells and refuses
    data with another number."""
    from bayes_alliance.inference.compiled import LayoutError, compile_model
    from bayes_alliance.inference.fit import FitResult, fit

    # the recovery test's data: the compiled kernels come from the on-disk cache
    data, _, ceiling = censored_example(3, sessions=12, n_therapists=8, patients=5)
    spec = ModelSpec(ceiling_predictor=ceiling)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(data, spec, draws=50, tune=100, chains=1, random_seed=2, progressbar=False)
        back = FitResult.load(res.save(tmp_path / "fit.nc"))
    post = res.idata.posterior
    n_cens = int((data.x == ceiling).sum())
    assert post["censored_predictor_value"].shape[-1] == n_cens
    assert float(post["censored_predictor_value"].min()) >= ceiling
    np.testing.assert_allclose(back.draws("trait_predictor"), res.draws("trait_predictor"))
    cm = compile_model(data, spec)
    frame = data.to_long()
    at = frame["predictor"] == ceiling
    roles = dict(
        patient="patient", therapist="therapist", session="session", predictor="predictor",
        outcome="outcome",
    )  # fmt: skip

    def data_with(x: np.ndarray) -> SessionData:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SessionData.from_frame(frame.assign(predictor=x), **roles)

    # the same number of censored cells, other values: refitted without recompiling
    cm.check(data_with(np.where(at, ceiling, frame["predictor"] - 0.01)))
    # one censored cell only: another layout
    one = np.where(at, ceiling - 0.5, frame["predictor"])
    one[0] = ceiling
    with pytest.raises(LayoutError, match="censored cells"):
        cm.check(data_with(one))


def test_prior_predictive_with_censoring():
    """The censored cells' latent scores have a flat prior: the prior predictive leaves them
    out and its replicates are recorded at the limit like the data."""
    from bayes_alliance.inference.prior_predictive import prior_predictive

    data = _quiet_data(ROWS)
    spec = ModelSpec(ceiling_predictor=CEILING_X, floor_outcome=FLOOR_Y)
    prior, rep = prior_predictive(build_model(data, spec), data, spec, draws=20, random_seed=1)
    assert not any(str(n).startswith("censored_") for n in prior.data_vars)
    assert float(rep["predictor"].max()) <= CEILING_X
    assert float(rep["outcome"].min()) >= FLOOR_Y


def test_spec_dict_without_limits_is_unchanged_and_mechanisms_refuse_them():
    """A spec without limits has no censoring keys in its dict (the compile cache's key and
    saved specs stay as they were); the mechanism models refuse a limit by name."""
    from bayes_alliance.cli.common import CLIError
    from bayes_alliance.cli.mechanisms import mechanism_spec

    assert not any(k.startswith(("ceiling_", "floor_")) for k in ModelSpec().to_dict())
    assert ModelSpec(floor_outcome=0.0).to_dict()["floor_outcome"] == 0.0
    with pytest.raises(CLIError, match="ceiling_predictor"):
        mechanism_spec(ModelSpec(ceiling_predictor=7.0), ("predictor", "outcome"))
