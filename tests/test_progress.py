"""Progress in logs (stage lines, sampling every 10 %, the time estimate) and PyTensor's BLAS
notices kept out of the output."""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass

import pytest

import bayes_alliance as ba
from bayes_alliance.core import quiet
from bayes_alliance.datasets import EXAMPLE_ROLES
from bayes_alliance.inference import estimate as est
from bayes_alliance.inference.progress import SamplingLog, duration, estimate_total


@dataclass
class Chain:
    finished_draws: int
    total_draws: int = 100
    divergences: int = 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_estimate_is_linear_extrapolation():
    assert estimate_total(10, 200, 4.0) == pytest.approx(80.0)
    assert estimate_total(200, 200, 33.0) == 33.0
    for bad in [(0, 10, 1.0), (11, 10, 1.0), (1, 10, -1.0)]:
        with pytest.raises(ValueError, match="need 0 < done"):
            estimate_total(*bad)


def test_duration_words():
    assert [duration(s) for s in (3.25, 42, 185, 3725)] == [
        "3.2 s",
        "42 s",
        "3 min 5 s",
        "1 h 02 min",
    ]


def test_sampling_log_on_a_fake_timer(caplog):
    clock = FakeClock()
    log = SamplingLog(clock=clock)
    with caplog.at_level(logging.INFO, logger="bayes_alliance"):
        log([Chain(0), Chain(0)])  # nutpie's first call: nothing done, the clock starts
        clock.now += 1.0
        log([Chain(2), Chain(2)])  # 2 % done, but only 1 s: too early to estimate
        clock.now += 1.0
        log([Chain(3), Chain(2)])  # 2.5 %, 2 s: estimate 2 x 200 / 5 = 80 s in all
        clock.now += 6.0
        log([Chain(12), Chain(10)])  # 11 % after 8 s: 8 x 200 / 22 = 72.7 s, 64.7 s left
        clock.now += 1.0
        log([Chain(13), Chain(10)])  # 11.5 %: no new line before 20 %
        clock.now += 31.0
        log([Chain(60), Chain(55)])  # 57.5 % after 40 s: one line at 50 %, 29.6 s left
        clock.now += 20.0
        log([Chain(100, divergences=3), Chain(100)])  # done after 60 s
    assert log.lines == [
        "sampling will take about 1 min 20 s in all (an estimate, extrapolated from the first 5 of "
        "200 draws)",
        "sampling  10%: 22 of 200 draws (2 chains, warm-up included), 8.0 s elapsed, about "
        "1 min 5 s left (estimate)",
        "sampling  50%: 115 of 200 draws (2 chains, warm-up included), 40 s elapsed, about "
        "30 s left (estimate)",
        "sampling 100%: 200 of 200 draws (2 chains, warm-up included), 3 divergent, "
        "1 min 0 s elapsed",
    ]
    assert [r.getMessage() for r in caplog.records] == log.lines
    assert all(r.name == "bayes_alliance.progress" for r in caplog.records)


def test_sampling_log_step_checked():
    with pytest.raises(ValueError, match="step"):
        SamplingLog(step=0)


def test_blas_notices_filtered_narrowly(caplog):
    quiet.install()
    blas = logging.getLogger("pytensor.tensor.blas")
    with caplog.at_level(logging.WARNING, logger="pytensor"):
        blas.warning("Using NumPy C-API based implementation for BLAS functions.")
        blas.warning("Some other BLAS problem")
    assert [r.getMessage() for r in caplog.records] == ["Some other BLAS problem"]
    with warnings.catch_warnings(record=True) as caught, quiet.hidden():
        warnings.simplefilter("always")
        quiet.install()
        warnings.warn_explicit(
            "PyTensor could not link to a BLAS installation. Operations ...",
            UserWarning,
            "cmodule.py",
            2940,
            module="pytensor.link.c.cmodule",
        )
        warnings.warn_explicit(
            "PyTensor could not link to a BLAS installation.",
            UserWarning,
            "mine.py",
            1,
            module="mine",  # the same text from elsewhere is not ours to hide
        )
        warnings.warn_explicit(
            "another pytensor warning",
            UserWarning,
            "cmodule.py",
            1,
            module="pytensor.link.c.cmodule",
        )
    assert sorted(str(w.message) for w in caught) == [
        "PyTensor could not link to a BLAS installation.",
        "another pytensor warning",
    ]


def test_fit_logs_stages_and_sampling(caplog):
    df, _ = ba.simulate(seed=5, n_therapists=4, patients_per_therapist=4, sessions=6)
    with caplog.at_level(logging.INFO, logger="bayes_alliance"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few therapists, a short run
        ba.fit_frame(
            df, **EXAMPLE_ROLES, draws=60, tune=60, chains=1, random_seed=3, progressbar=False
        )
    text = [r.getMessage() for r in caplog.records if r.name.startswith("bayes_alliance")]
    joined = "\n".join(text)
    assert "sampling with nutpie: 1 chains x (60 warm-up + 60 draws)" in joined
    built = "building the model (16 patients x 6 sessions): done in" in joined
    warm = "model taken from the warm cache" in joined
    assert built or warm, joined
    if built:
        assert "model compiled in" in joined or "model taken from the compile cache" in joined
    assert "sampling 100%: 120 of 120 draws" in joined
    assert "post-hoc draws (latent parts, states, log-likelihood): done in" in joined
    # issue 28: the estimate before the fit (once, before sampling) and the actual time after
    first = [i for i, t in enumerate(text) if t.startswith("expected time: roughly")]
    assert len(first) == 1, joined
    assert first[0] < next(i for i, t in enumerate(text) if t.startswith("sampling with"))
    took = r"the fit took .+; estimated before it: .+ to .+ \((within|below|above) the range\)"
    assert sum(bool(re.fullmatch(took, t)) for t in text) == 1, joined
    blas = [r for r in caplog.records if "BLAS" in r.getMessage()]
    assert not blas


def test_cli_fit_prints_progress_lines_unless_quiet(tmp_path, capsys):
    from bayes_alliance.cli.app import main

    df, _ = ba.simulate(seed=5, n_therapists=4, patients_per_therapist=4, sessions=6)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    flags = [f"--{k}={v}" for k, v in EXAMPLE_ROLES.items()]
    flags += ["--draws", "40", "--tune", "40", "--chains", "1", "--seed", "2"]
    main(["fit", str(path), *flags, "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err  # not a terminal here: every line
    for line in (
        "read ",
        "expected time: roughly",
        "sampling with nutpie",
        "sampling 100%",
        "the fit took",
        "writing the results",
    ):
        assert line in err, err
    main(["fit", str(path), *flags, "--out", str(tmp_path / "b"), "--quiet"])
    err = capsys.readouterr().err
    assert "sampling with nutpie" not in err and "writing the results" not in err
    assert not logging.getLogger("bayes_alliance").handlers  # the handler was removed


@pytest.mark.parametrize(
    ("sampler", "nuts"), [("pymc", "pymc"), ("numpyro", "numpyro"), ("nutpie-jax", "nutpie")]
)
def test_pymc_and_jax_samplers_reach_pm_sample(monkeypatch, caplog, sampler, nuts):
    """The PyMC and JAX sampler paths import PyMC themselves (the module does not, for warm
    fits): each reaches pm.sample with its sampler and the run's settings, and logs the stage
    line. JAX's modules are stood in for, so this runs where JAX is not installed."""
    import sys
    import types

    import pymc as pm

    from bayes_alliance.inference import sampling

    for name in ("pymc.sampling.jax", "bayes_alliance.kernels.kalman_jax"):
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name) or types.ModuleType(name))
    calls = []
    monkeypatch.setattr(pm, "sample", lambda **kw: calls.append(kw) or "idata")
    run = sampling.SamplerRun(draws=7, tune=3, chains=2, cores=1, sampler=sampler)
    timing: dict[str, float] = {}
    path = sampling._pymc if sampler == "pymc" else sampling._jax
    with caplog.at_level(logging.INFO, logger="bayes_alliance"):
        assert path("model", run, 11, timing) == "idata"
    (kw,) = calls
    assert kw["nuts_sampler"] == nuts and kw["model"] == "model" and kw["random_seed"] == 11
    assert (kw["draws"], kw["tune"], kw["chains"]) == (7, 3, 2)
    assert ("cores" in kw) == (sampler == "pymc")
    assert timing["sample_s"] >= 0.0
    assert f"sampling with {sampler}: 2 chains x (3 warm-up + 7 draws)" in caplog.text


def test_time_estimate_by_hand():
    """M 240 x 15, 2 chains x (1000 + 1000) on 2 cores: sampling 2000 (3e-4 + 1.4e-7 3600)
    = 1.608 s, post-hoc 2 x 1000 (3.5e-4 + 1.25e-7 3600) = 1.6 s, building 4 s, compiling
    32 s (1 s from the compile cache)."""
    e = est.estimate_fit_time(3600, 1000, 1000, 2, 2)
    assert e.sample_s == pytest.approx(1.608, rel=1e-12)
    assert e.posthoc_s == pytest.approx(1.6, rel=1e-12)
    assert e.compile_s == 32.0 and e.total_s() == pytest.approx(39.208, rel=1e-12)
    assert e.bounds() == pytest.approx((39.208 / 2, 39.208 * 2), rel=1e-12)
    # not known before the fit: the model may be in the compile cache (about 1 s then)
    assert e.bounds(cached=True) == pytest.approx((8.208 / 2, 8.208 * 2), rel=1e-12)
    # four chains on two cores run in two waves; the options multiply the sampling time
    assert est.estimate_fit_time(3600, 1000, 1000, 4, 2).sample_s == pytest.approx(2 * 1.608)
    gaps = est.estimate_fit_time(3600, 1000, 1000, 2, 2, gaps=True, continuous=True)
    assert gaps.sample_s == pytest.approx(1.608 * 2.5 * 3.0)
    sampled = est.estimate_fit_time(3600, 1000, 1000, 2, 2, sampled_traits=True, warm=True)
    assert (sampled.posthoc_s, sampled.compile_s) == (0.0, 1.0)
    line = e.line()
    assert line.startswith(
        "expected time: roughly 20 s to 1 min 18 s, or 4.1 s to 16 s if the compile cache has "
        "the model (building about 4.0 s, compiling about 32 s"
    )
    assert "compile cache" not in est.estimate_fit_time(3600, 1000, 1000, 2, 2, warm=True).line()
    with pytest.raises(ValueError, match="draws >= 1"):
        est.estimate_fit_time(100, 0, 10, 2, 2)


def test_time_estimate_grows_with_the_data_and_brackets_the_benchmarks():
    """The sampling estimate grows with the cells and lies within the logged spread of the
    timings it was fitted to (benchmarks/README.md, issue 6 table, rows "ours": 2 chains x
    (1000 + 1000) on 2 cores)."""
    measured = {500: 0.6, 3600: 1.4, 40_000: 8.9, 400_000: 120.6}  # cells: sample s
    previous = 0.0
    for cells, seconds in measured.items():
        e = est.estimate_fit_time(cells, 1000, 1000, 2, 2)
        assert e.sample_s > previous and e.total_s() > previous
        previous = e.sample_s
        assert seconds / est.SPREAD <= e.sample_s <= seconds * est.SPREAD, (cells, e.sample_s)


def test_compare_line_places_the_actual_time():
    e = est.TimeEstimate(10.0, 9.0, 1.0, cached_compile_s=2.0, setup_s=0.0)  # 20 s; cached 12 s
    assert est.compare_line(e, 25.0) == (
        "the fit took 25 s; estimated before it: 10 s to 40 s (within the range)"
    )
    assert est.compare_line(e, 5.0).endswith("(below the range)")
    assert est.compare_line(e, 41.0).endswith("(above the range)")
    assert est.compare_line(e, 5.0, cached=True) == (
        "the fit took 5.0 s; estimated before it: 6.0 s to 24 s (below the range)"
    )


def test_the_estimate_names_the_options_it_is_not_calibrated_for():
    from bayes_alliance.inference.sampling import SamplerRun
    from bayes_alliance.spec.model_spec import ModelSpec

    df, _ = ba.simulate(seed=3, n_therapists=3, patients_per_therapist=3, sessions=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = ba.SessionData.from_frame(df, **EXAMPLE_ROLES)
    run = SamplerRun(draws=100, tune=100)
    plain = est.expected_time(data, ModelSpec(), run)
    assert plain is not None and "calibrated for" not in plain.line()
    spec = ModelSpec(random_slopes=("patient",), measurement_error=True)
    odd = est.expected_time(data, spec, run)
    assert odd is not None
    assert odd.line().endswith(
        "; not calibrated for random slopes, measurement error: may take longer"
    )
    # the same numbers: only the words differ
    assert odd.total_s() == plain.total_s()
    assert est.uncalibrated_options(ModelSpec(moderators=("age",), covariates=("age",))) == (
        "covariates",
        "moderators",
    )
