"""What both model families share: one loader for either kind of results file (also files
written by earlier code), the mechanism report rendered as the main one, one label table,
highest-density intervals, the sampler settings.

``data/old_mechanism_fit.nc`` was written by ``MechanismResult.save`` of commit f95930d (the
code before the two families shared a writer): a mediation fit of 8 patients x 5 sessions
(``simulate_mechanisms(seed=22, design="mediation", n_therapists=0, patients_per_therapist=8,
n_sessions=5)``), 1 chain x 8 draws after 20 tuning steps, seed 2; beside it that code's
``effects()`` table (``old_mechanism_effects.csv``, equal-tailed intervals).
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_alliance import SessionData, load_result, simulate
from bayes_alliance.core.diagnostics import Convergence
from bayes_alliance.core.files import PROVENANCE_ATTR, ResultsFileError
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference.fit import FitResult, fit
from bayes_alliance.inference.results import Result
from bayes_alliance.inference.sampling import SamplerRun
from bayes_alliance.inference.unit_group import posterior_of
from bayes_alliance.mechanisms.fit import MechanismResult, load_mechanisms
from bayes_alliance.report.labels import mechanism_label, parameter_label
from bayes_alliance.report.write import write_report
from bayes_alliance.spec.model_spec import ModelSpec

DATA = Path(__file__).parent / "data"
OLD_MECHANISM = DATA / "old_mechanism_fit.nc"
OLD_EFFECTS = DATA / "old_mechanism_effects.csv"
PASSED = Convergence(1.001, 900.0, 850.0, 0, 0.9, 2000)
# Post-hoc draws of an integrated-traits fit: functions of the sampled draws and the seed, not
# stored (the file format's description).
POSTHOC = (
    "state_predictor",
    "state_outcome",
    "trait_predictor",
    "trait_outcome",
    "patient_dev_predictor",
    "patient_dev_outcome",
    "therapist_dev_predictor",
    "therapist_dev_outcome",
    "therapist_dev_predictor_raw",
    "therapist_dev_outcome_raw",
    "state_effect_by_patient",
)


def _hdi(draws: np.ndarray, prob: float) -> tuple[float, float]:
    """The narrowest interval holding floor(prob n) + 1 of the sorted draws (Chen & Shao 1999)."""
    x = np.sort(draws.ravel())
    k = int(np.floor(prob * x.size))
    i = int(np.argmin(x[k:] - x[: x.size - k]))
    return float(x[i]), float(x[i + k])


@pytest.fixture(scope="module")
def old_mechanism() -> MechanismResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = load_result(OLD_MECHANISM)
    assert isinstance(result, MechanismResult)
    return result


@pytest.fixture(scope="module")
def small_fit(tmp_path_factory) -> tuple[FitResult, Path]:
    """A short joint-model fit of 9 patients and its file."""
    df, _ = simulate(seed=3, n_therapists=3, patients_per_therapist=3, sessions=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        result = fit(data, draws=30, tune=30, random_seed=1, progressbar=False)
    path = result.save(tmp_path_factory.mktemp("main") / "fit.nc")
    return result, path


def test_an_old_mechanism_file_loads_with_its_effects(old_mechanism):
    r = old_mechanism
    assert isinstance(r, Result) and r.kind == "mechanism" and r.design == "mediation"
    assert r.provenance["random_seed"] == 2 and r.data.n_patients == 8
    old = pd.read_csv(OLD_EFFECTS, index_col="parameter")
    # 0.4 renamed the random paths' SD rows after their lags (sd_<lag>_patient)
    old = old.rename(
        index={
            "sd_path_mediator<-predictor": "sd_effect_on_mediator_patient",
            "sd_path_outcome<-mediator": "sd_mediator_effect_patient",
        }
    )
    new = r.effects()
    # 0.4 added the probability that the dynamics are stationary (all patients' and each's)
    assert set(new.index) == set(old.index) | {"stationary", "stationary_patients"}
    # The same draws give the same means; the intervals are highest-density now.
    np.testing.assert_allclose(new.loc[old.index, "mean"], old["mean"], rtol=1e-12)
    draws = r.effect_draws()["indirect_effect_within"]
    lo, hi = _hdi(draws, 0.94)
    assert new.loc["indirect_effect_within", ["ci_low", "ci_high"]].tolist() == [lo, hi]
    assert load_mechanisms(OLD_MECHANISM).provenance == r.provenance
    with pytest.raises(ResultsFileError, match="load_mechanisms"):
        FitResult.load(OLD_MECHANISM)
    with pytest.raises(ValueError, match="for the main model"):
        r.save(Path("unused.nc"), store=("states",))


def _old_layout_file(result: FitResult, path: Path, states: bool = False) -> Path:
    """A joint-model file as the format describes it (and earlier code wrote it): the sampled
    draws without the post-hoc ones, the data's columns by role, the sampler statistics, and
    the provenance as JSON in the file's attribute. ``states``: with float32 copies of the
    states in the posterior group, as ``save(store=("states",))`` wrote them before the states
    had a group of their own. The per-unit draws, which a fit keeps in ``unit_draws``, are in
    the posterior group, as everything was before the groups."""
    post = posterior_of(result.idata)
    derived = [n for n in POSTHOC if n in post.data_vars]
    stored = []
    if states:
        assert "state_predictor" not in post  # the fit keeps them in their group
        post = post.assign(result.idata.latent_states.to_dataset().astype(np.float32).data_vars)
        derived = [n for n in derived if not n.startswith("state_") or n.endswith("_by_patient")]
        stored = ["states"]
    roles = result.data.roles
    table = xr.Dataset(
        {
            c: ("row", result.data.frame[c].astype(str).to_numpy(dtype=str))
            if c in (roles.patient, roles.therapist)
            else ("row", result.data.frame[c].to_numpy(dtype=float))
            for c in roles.columns()
        }
    )
    tree = xr.DataTree(
        children={
            "posterior": xr.DataTree(post.drop_vars(derived)),
            "session_data": xr.DataTree(table),
            "sample_stats": xr.DataTree(result.idata.sample_stats.to_dataset()),
        }
    )
    tree.attrs[PROVENANCE_ATTR] = json.dumps({**result.provenance, "stored": stored}, default=str)
    tree.to_netcdf(path, engine="h5netcdf")
    return path


def test_load_result_reads_the_main_model_in_both_layouts(small_fit, tmp_path):
    result, path = small_fit
    old = _old_layout_file(result, tmp_path / "old.nc")
    old_states = _old_layout_file(result, tmp_path / "old_states.nc", states=True)
    with xr.open_datatree(old_states, engine="h5netcdf") as tree:
        assert "state_outcome" in tree.posterior and "latent_states" not in tree.children
    for file in (path, old, old_states):
        back = load_result(file)
        assert isinstance(back, FitResult) and isinstance(back, Result) and back.kind == "main"
        for name in ("state_effect", "sd_patient_outcome", "trait_outcome", "state_outcome"):
            np.testing.assert_array_equal(back.draws(name), result.draws(name))
        pd.testing.assert_frame_equal(back.summary(), result.summary())
        # Wherever the file kept the states, the loaded result has them in their own group,
        # and the per-unit draws in theirs.
        assert "state_predictor" not in back.idata.posterior
        assert "trait_outcome" not in back.idata.posterior
        np.testing.assert_array_equal(
            back.idata.unit_draws["therapist_dev_outcome"].values,
            result.idata.unit_draws["therapist_dev_outcome"].values,
        )
        np.testing.assert_array_equal(
            back.idata.latent_states["state_predictor"].values,
            result.idata.latent_states["state_predictor"].values,
        )
    with pytest.raises(ResultsFileError, match=r"FitResult\.load"):
        load_mechanisms(path)


def test_the_short_view_shows_the_summary_hdi(small_fit):
    result, _ = small_fit
    text = repr(result)
    assert "key effects (mean [94% HDI])" in text and "equal-tailed" not in text
    row = result.summary().loc["state_effect"]
    line = next(x for x in text.splitlines() if x.strip().startswith("state_effect"))
    assert line.split()[1:] == [
        f"{row['mean']:.3f}",
        f"[{row['ci_low']:.3f},",
        f"{row['ci_high']:.3f}]",
    ]


def test_mechanism_report_has_the_main_reports_parts(old_mechanism, tmp_path):
    html = write_report(old_mechanism, tmp_path / "r", ci_prob=0.9).read_text()
    tables = [int(n) for n in re.findall(r"<caption>Table (\d+)\. ", html)]
    figures = re.findall(r"<figcaption>Figure (\d+)\. ", html)
    assert tables == list(range(1, len(tables) + 1)) and len(tables) >= 5
    assert figures == ["1", "2", "3"] and "<figure id='path_diagram'>" in html
    assert "<figure id='ppc'>" in html  # the posterior predictive check
    assert "<figure id='trace_rank'>" in html
    # The trace's rows in words (the columns of the series), not their names again.
    assert "lag[outcome, predictor] = alliance state t-1 -&gt; symptoms state t" in html
    assert "Priors actually used (after scaling to the data)" in html
    # The lag prior of symptoms on alliance: the file predates the shared rules (its
    # provenance records none), so the report restates the rule it was fitted with,
    # 0.5 SD(symptoms) / SD(alliance) over the cells (0.1's mechanism_model.py, line 283).
    z = old_mechanism.data.z.reshape(-1, 3)
    ratio = np.nanstd(z[:, 2]) / np.nanstd(z[:, 0])
    assert "prior_rules" not in old_mechanism.provenance
    assert f"<td class='text'>Normal(mu=0, sigma={0.5 * ratio:.3g})</td>" in html
    assert "default of bayes_alliance 0.1: σ = 0.5 SD(symptoms) / SD(alliance)" in html
    assert "Kenny, D. A., Korchmaros, J. D., &amp; Bolger, N. (2003)" in html
    assert "Vehtari, A., Gelman, A., Simpson, D." in html and "90% HDI" in html
    # 8 draws fail the check: a banner at the top, the sentences provisional.
    banner = html.index("class='banner'")
    assert html.index("<h1>") < banner < html.index("<h2>Summary in words")
    assert "CONVERGENCE CHECK FAILED" in html and "class='provisional'" in html
    for name in ("report.md", "summary.csv", "effects.csv", "effects.md", "path_diagram.png"):
        assert (tmp_path / "r" / name).is_file(), name
    passed = dataclasses.replace(old_mechanism, convergence=PASSED)
    clean = write_report(passed, tmp_path / "ok").read_text()
    assert "class='banner'" not in clean and "class='provisional'" not in clean


def test_one_label_table_for_both_families():
    words = {"x": "wai", "y": "phq", "m": "hope"}
    for name in ("state_effect", "reverse_state_effect", "trait_effect_patient"):
        assert mechanism_label(name, words) == parameter_label(name, "wai", "phq")
    assert mechanism_label("effect_on_mediator", words) == (
        "a: wai (t-1) → hope (t), average over patients"
    )
    assert mechanism_label("sd_path_mediator<-predictor", words) == (
        "SD between patients of the path wai (t-1) → hope (t)"
    )
    assert mechanism_label("sd_effect_on_mediator_patient", words) == (
        "SD between patients of the a: wai (t-1) → hope (t)"
    )
    assert mechanism_label("sd_predictor_autoregression_patient", words) == (
        "SD between patients of the autoregression of wai"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(draws=0), "draws and chains must be positive"),
        (dict(tune=-1), "tune non-negative"),
        (dict(sampler="stan"), "sampler must be 'nutpie' or 'pymc'"),
    ],
)
def test_sampler_settings_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        SamplerRun(**settings)
    assert SamplerRun(chains=4).n_cores == 2 and SamplerRun(chains=1).n_cores == 1


def test_arviz_summary_of_a_fit_lists_parameters_not_states(small_fit):
    """issue 28: ``arviz_stats.summary(result.idata)`` has one row per entry of the named
    parameters (19 scalars here), as brms's summary: the 2 x 9 x 5 state draws are in
    ``latent_states``, the 2 latent means x 9 patients and 4 therapist deviations x 3
    therapists in ``unit_draws``, not the posterior; all are reachable from the result."""
    import arviz_stats as azs

    result, _ = small_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = azs.summary(result.idata, round_to="none")
    post = result.idata.posterior
    entries = sum(int(np.prod(post[n].shape[2:])) for n in result.parameters)
    assert len(result.parameters) == len(result.spec.free_parameters()) == 19
    assert len(table) == entries == 19
    assert sorted(table.index) == sorted(result.parameters)
    assert "patient" not in post.dims and "therapist" not in post.dims
    w = result.idata.latent_states
    assert w["state_outcome"].shape == (2, 30, 9, 5)
    np.testing.assert_array_equal(result.states()["state_outcome"].values, w["state_outcome"])
    np.testing.assert_array_equal(result.draws("state_predictor"), w["state_predictor"])
    units = result.idata.unit_draws
    assert units["trait_outcome"].dims == ("chain", "draw", "patient")
    assert sum(da.size // 60 for da in units.data_vars.values()) == 4 * 3 + 2 * 9
    assert list(units["trait_outcome"].patient.values) == list(result.data.patients)
    np.testing.assert_array_equal(result.draws("trait_outcome"), units["trait_outcome"])
    assert len(result.summary(var_names=["trait_outcome"])) == 9


def test_sampled_traits_put_their_states_in_the_group_too(tmp_path):
    """The sampled-traits model returns its states as deterministics of the posterior; the
    fit moves them to ``latent_states`` and a saved file keeps them there."""
    df, _ = simulate(seed=4, n_therapists=2, patients_per_therapist=3, sessions=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        result = fit(
            data,
            ModelSpec(traits="sampled", therapist_level=False),
            draws=10,
            tune=10,
            random_seed=1,
            progressbar=False,
        )
    assert "state_outcome" not in result.idata.posterior
    assert result.idata.latent_states["state_outcome"].shape == (2, 10, 6, 4)
    assert "trait_outcome" not in result.idata.posterior
    assert result.idata.unit_draws["trait_outcome"].shape == (2, 10, 6)
    path = result.save(tmp_path / "sampled.nc")
    with xr.open_datatree(path, engine="h5netcdf") as tree:  # the file keeps them sampled
        assert "trait_outcome" in tree.posterior
    back = FitResult.load(path)
    assert "state_outcome" not in back.idata.posterior
    assert "trait_outcome" not in back.idata.posterior
    np.testing.assert_array_equal(
        back.idata.unit_draws["trait_outcome"].values,
        result.idata.unit_draws["trait_outcome"].values,
    )
    np.testing.assert_array_equal(
        back.idata.latent_states["state_outcome"].values,
        result.idata.latent_states["state_outcome"].values,
    )
