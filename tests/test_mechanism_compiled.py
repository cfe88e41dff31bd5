"""Compiled refits of the integrated mechanism models: one graph for every data set of a
layout, a refit equal to a fresh fit of the new data, other layouts refused by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.inference.cache import graph_fingerprint
from bayes_alliance.inference.compiled import LayoutError
from bayes_alliance.mechanisms.compiled import CompiledMechanisms, compile_mechanisms, layout_of
from bayes_alliance.mechanisms.fit import fit_mechanisms
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import simulate_mechanisms

THERAPIST_LAG = (("outcome", "mediator"),)


def _data(
    seed: int, therapists: int = 2, per: int = 3, baseline: bool = False, swap: bool = False
) -> SeriesData:
    """Mediation with an end outcome, gaps placed by the seed, one series cut short, one
    patient without an end outcome (which patient depends on the seed) and, on request, a
    patient-level baseline column, or the first and last patients' therapists swapped."""
    df, _ = simulate_mechanisms(
        seed=seed,
        design="mediation",
        n_therapists=therapists,
        patients_per_therapist=per,
        n_sessions=6,
        missing=0.15,
        change_sd=0.1,
        end_effects=(0.5, 1.0),
        end_therapist_sd=0.3,
    )
    ids = sorted(df.patient.unique())
    if swap:
        ends = df.patient.isin([ids[0], ids[-1]])
        first_t, last_t = (df.therapist[df.patient == p].iloc[0] for p in (ids[0], ids[-1]))
        df.loc[ends, "therapist"] = df.loc[ends, "therapist"].map(
            {first_t: last_t, last_t: first_t}
        )
    rng = np.random.default_rng(seed)
    cut = ids[int(rng.integers(len(ids)))]
    df = df[~((df.patient == cut) & (df.session >= 5))].reset_index(drop=True)
    df.loc[df.patient == ids[int(rng.integers(len(ids)))], "post_symptoms"] = np.nan
    if baseline:
        z = dict(zip(ids, rng.normal(size=len(ids)), strict=True))
        df["z1"] = df.patient.map(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SeriesData.from_frame(
            df, patient="patient", session="session", predictor="alliance",
            outcome="symptoms", mediator="mediator", therapist="therapist",
            end_outcome="post_symptoms", covariates=["z1"] if baseline else (),
        )  # fmt: skip


def test_two_data_sets_of_one_layout_build_one_graph():
    """Every number the integrated model takes from the data is a container: data sets with
    other values, gaps, series ends, missing end outcomes, baseline values and caseloads give
    the same graph (the compiled code's key), for the fullest model."""
    spec = MechanismSpec(
        therapist_level=True,
        therapist_paths=THERAPIST_LAG,
        measurement_error=("mediator",),
        random_innovations=True,
        baseline=("z1",),
    )
    a, b = _data(1, baseline=True), _data(2, baseline=True)
    assert not np.array_equal(np.isnan(a.z), np.isnan(b.z))
    assert not np.array_equal(a.last, b.last)
    assert graph_fingerprint(build_mechanism_model(a, spec)) == graph_fingerprint(
        build_mechanism_model(b, spec)
    )
    # the caseloads may differ too (two therapists swap patients, same counts)
    c = _data(3, baseline=True, swap=True)
    assert not np.array_equal(c.patient_therapist, a.patient_therapist)
    assert graph_fingerprint(build_mechanism_model(c, spec)) == graph_fingerprint(
        build_mechanism_model(a, spec)
    )


def test_a_refit_equals_a_fresh_fit_of_the_new_data():
    spec = MechanismSpec(therapist_level=True, therapist_paths=THERAPIST_LAG)
    first, new = _data(1), _data(2)
    kw = dict(random_seed=5, draws=60, tune=60, chains=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = compile_mechanisms(first, spec)
        refit = cm.fit(new, **kw)
        fresh = fit_mechanisms(new, spec, progressbar=False, **kw)
        again = cm.fit(first, **kw)
    post, ref = refit.idata.posterior, fresh.idata.posterior
    assert set(post.data_vars) == set(ref.data_vars)
    for name in post.data_vars:
        np.testing.assert_array_equal(post[name].values, ref[name].values, err_msg=name)
    assert refit.provenance["data_hash"] == new.data_hash
    assert refit.provenance["random_seed"] == fresh.provenance["random_seed"] == 5
    # the new data really were swapped in: a refit of the first data differs
    assert not np.allclose(again.idata.posterior["intercept"], post["intercept"])


def test_another_layout_is_refused_naming_what_differs():
    spec = MechanismSpec(therapist_level=True)
    first = _data(1)
    model = build_mechanism_model(first, spec)
    # the check needs the layout only: nothing compiled
    cm = CompiledMechanisms(spec.resolved(first), model, None, 0.0, layout_of(model))
    with pytest.raises(
        LayoutError, match=r"data data_observed: compiled .*\(6, 6, 3\).*\(8, 6, 3\)"
    ):
        cm.check(_data(1, per=4))
    with pytest.raises(LayoutError, match="dim patient: compiled 6, new 8"):
        cm.check(_data(1, per=4))
    with pytest.raises(LayoutError, match=r"data data_caseload: compiled .*\(2, 6\).*\(3, 6\)"):
        cm.check(_data(1, therapists=3, per=2))


def test_the_sampled_form_is_refused():
    with pytest.raises(ValueError, match="traits='integrated'"):
        compile_mechanisms(_data(1), MechanismSpec(therapist_level=True, traits="sampled"))
