"""Between-level mediation against an established tool: lavaan's two-level SEM.

The shipped data set ``bayes_alliance/datasets/mediation_between.csv`` (200 patients x 10
sessions, drawn without within-person dynamics, so lavaan's two-level SEM with independent
sessions is the true model) was fitted by lavaan 0.6.14 (ML) with
``benchmarks/lavaan_mediation.R``; its estimates and standard errors are in
``tests/reference/lavaan_mediation_between.json`` together with the exact model syntax and
versions. Here the package's default model (lagged dynamics estimated, latent centring, a
``baseline``) is fitted to the same file and its posterior means of a, b, c', ab and the total
effect are compared with lavaan's estimates, in units of lavaan's SE.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from bayes_alliance import datasets
from bayes_alliance.core import vocab as v

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "lavaan_mediation_between.json"
DATA = ROOT / "bayes_alliance" / "datasets" / "mediation_between.csv"

# Tolerance for the paths and effects, in lavaan SEs. With 200 patients and flat-enough default
# priors the posterior mean and the ML estimate differ by O(1/J) of an SE; the Monte Carlo error
# of a posterior mean at the bulk ESS asserted below (>= 400) is at most 0.05 posterior SD,
# which is about 0.05 SE. Observed on this file: |difference| <= 0.08 SE over sampler seeds.
# A quarter of an SE leaves room for that and still fails on a real bias (the baseline's shift
# counted twice or not at all, centring of z, or the wrong b, each moves a path by one SE or more).
PATH_TOL = 0.25
# The between residual variances: ML's are biased down by about (p + 1) / J (REML's are not) and
# the posterior mean of a variance sits above its mode by about another 2 / J; at J = 200 this
# is 2-3% of the variance, about 0.25 SE here (observed 0.2-0.3 SE). Half an SE, one-sided.
VAR_TOL = 0.5


@pytest.fixture(scope="module")
def reference() -> dict:
    if not REFERENCE.is_file():
        pytest.skip(
            f"lavaan reference output {REFERENCE} is missing: run `Rscript "
            "benchmarks/lavaan_mediation.R` (needs R with lavaan and jsonlite)"
        )
    ref = json.loads(REFERENCE.read_text())
    md5 = hashlib.md5(DATA.read_bytes()).hexdigest()
    assert ref["data_md5"] == md5, "the lavaan reference was computed on another data file"
    return ref


@pytest.fixture(scope="module")
def fitted():
    import bayes_alliance as ba

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ba.fit_frame(
            datasets.load_mediation(),
            **datasets.MEDIATION_ROLES,
            baseline=("baseline",),
            draws=500,
            tune=500,
            chains=2,
            random_seed=1,
            progressbar=False,
            log_likelihood=False,
        )


def test_mediation_data_regenerates_from_record():
    stored = datasets.load_mediation()
    fresh, truth = datasets.regenerate_mediation()
    pd.testing.assert_frame_equal(stored, fresh, atol=1e-6, check_dtype=False)
    record = datasets.mediation_record()
    assert record["seed"] == datasets.MEDIATION_SEED
    assert record["mediation"] == pytest.approx(truth.mediation)
    assert stored["patient"].nunique() == 200
    assert (stored.groupby("patient")["session"].count() == 10).all()
    assert (stored.groupby("patient")["baseline"].nunique() == 1).all()


def test_posterior_agrees_with_lavaan_two_level_sem(reference, fitted):
    """Read from the tables a user reads: ``summary()`` for the paths, ``effects()`` for ab and
    the total effect."""
    conv = fitted.convergence
    assert conv.divergences == 0 and conv.max_r_hat < 1.02 and conv.min_ess_bulk >= 400, conv
    table = pd.concat([fitted.summary(), fitted.effects()])
    rows = {
        "a": f"{v.BASELINE_EFFECT_PREDICTOR}[baseline]",
        "b": v.TRAIT_EFFECT_PATIENT,
        "c_prime": f"{v.BASELINE_EFFECT_OUTCOME}[baseline]",
        "ab": "indirect_effect_between",
        "total": "total_effect_between",
    }
    est = reference["estimates"]
    for name, row in rows.items():
        mean, sd = table.loc[row, "mean"], table.loc[row, "sd"]
        lav, se = est[name]["est"], est[name]["se"]
        assert abs(mean - lav) < PATH_TOL * se, (name, mean, lav, se)
        # Large-sample agreement of the spread too: posterior SD and ML standard error.
        assert sd == pytest.approx(se, rel=0.2), (name, sd, se)
    for name, sd_name in (
        ("between_residual_var_x", v.SD_PATIENT_PREDICTOR),
        ("between_residual_var_y", v.SD_PATIENT_OUTCOME),
    ):
        var = fitted.draws(sd_name) ** 2
        lav, se = est[name]["est"], est[name]["se"]
        assert 0 <= var.mean() - lav < VAR_TOL * se, (name, var.mean(), lav, se)


@pytest.mark.slow
def test_the_k_series_models_baseline_block_agrees_with_lavaan(reference):
    """The same comparison for the mechanism (k-series) model's baseline block: the predictor
    and outcome series with the baseline shifting both latent means
    (:mod:`bayes_alliance.mechanisms.baseline`), integrated form, two levels. Run of 2026-12-06
    (seed 1, 57 s), posterior mean against lavaan in its SEs: a 0.08, b 0.05, c' 0.01, ab 0.09,
    total 0.06; posterior SDs within 5% of the SEs."""
    from bayes_alliance.data.series_data import SeriesData
    from bayes_alliance.mechanisms.fit import fit_mechanisms
    from bayes_alliance.mechanisms.spec import MechanismSpec

    roles = datasets.MEDIATION_ROLES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SeriesData.from_frame(
            datasets.load_mediation(), patient=roles["patient"], session=roles["session"],
            predictor=roles["predictor"], outcome=roles["outcome"], covariates=["baseline"],
        )  # fmt: skip
        res = fit_mechanisms(
            data, MechanismSpec(baseline=("baseline",)), draws=500, tune=500, chains=2,
            random_seed=1, progressbar=False,
        )  # fmt: skip
    conv = res.convergence
    assert conv.divergences == 0 and conv.max_r_hat < 1.02 and conv.min_ess_bulk >= 400, conv
    table = res.effects()
    rows = {
        "a": "baseline_effect_predictor",
        "b": v.TRAIT_EFFECT_PATIENT,
        "c_prime": "direct_effect_between",
        "ab": "indirect_effect_between",
        "total": "total_effect_between",
    }
    est = reference["estimates"]
    for name, row in rows.items():
        mean, sd = table.loc[row, "mean"], table.loc[row, "sd"]
        lav, se = est[name]["est"], est[name]["se"]
        print(f"{name}: {mean:.4f} (sd {sd:.4f}) lavaan {lav:.4f} (se {se:.4f})")
        assert abs(mean - lav) < PATH_TOL * se, (name, mean, lav, se)
        assert sd == pytest.approx(se, rel=0.2), (name, sd, se)
