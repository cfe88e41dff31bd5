r"""A rough estimate, before a fit, of how long compiling, sampling and the post-hoc draws take.

The estimate is a formula in the data's size and the sampler settings, fitted by hand to the
timings in ``benchmarks/README.md`` (a 2-core CPU machine, pymc 6.4 / nutpie 0.16, integrated
traits, complete series unless said otherwise). It is not a measurement of this machine: it is
logged as a range, a factor of :data:`SPREAD` either side of the central value, and after the
fit the progress log sets the actual time beside it (:func:`compare_line`).

Sampling (the chains run in ``ceil(chains / cores)`` waves, each chain's draws in sequence):

.. math:: T_\text{sample} = (\text{draws} + \text{tune}) \lceil c / k \rceil
    (a + b\,n) \, m

with :math:`n` the cells inside the patients' series (patients x sessions for complete data),
:math:`a` = :data:`PER_DRAW_S`, :math:`b` = :data:`PER_CELL_DRAW_S`, and :math:`m` the product
of the model options' factors (:data:`GAPS_FACTOR`, :data:`CONTINUOUS_FACTOR`,
:data:`SAMPLED_TRAITS_FACTOR`). The post-hoc draws (integrated traits) take
:math:`T_\text{post} = c \cdot \text{draws} \cdot (p_0 + p\,n)` with :math:`p_0` =
:data:`POSTHOC_PER_DRAW_S`, :math:`p` = :data:`POSTHOC_PER_CELL_DRAW_S`; building the model
(imports included) takes :data:`SETUP_S`; compiling takes :data:`COMPILE_S` when the model is
not in the compile cache and :data:`WARM_S` when it is there (known before the fit only for
the warm cache, a fit of the same data and spec: otherwise both ranges are logged, and the
comparison after the fit uses the one that applied).
Options not named above (random slopes, measurement error, indicators, covariates and
moderators, censoring) are not calibrated: their fits can take longer than the range says, and
the logged line names those the model has (:func:`uncalibrated_options`).

On a machine whose numba kernel cache is cold (a new installation, or a changed kernel), the
first fit with missing cells inside a series also compiles the filter's kernels, once: about
19 s more than the range, not counted in it (the cache keeps them for later fits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference.progress import duration
from bayes_alliance.inference.sampling import SamplerRun
from bayes_alliance.spec.model_spec import ModelSpec

# benchmarks/README.md, "2026-11-26 (issue 6), integrated traits", rows "ours" (2 chains on 2
# cores, 1000 draws + 1000 tune, so 2000 draws per chain in sequence):
#   S 50x10 (500 cells): sample 0.6 s -> 0.30 ms per draw, nearly all of it overhead: a;
#   L 2000x20 (40,000 cells): 8.9 s -> 4.45 ms per draw; XL 20000x20 (400,000 cells): 120.6 s
#   -> 60 ms per draw: b = 1.1e-7 (L) to 1.5e-7 (XL) s per cell and draw, 1.4e-7 taken.
#   Check: M 240x15 (3,600 cells) gives 2000 (3e-4 + 5.0e-4) = 1.6 s against 1.4 s measured.
PER_DRAW_S = 3.0e-4
PER_CELL_DRAW_S = 1.4e-7
# Same table, compile s of "ours": 39.0 (S), 29.7 (M), 27.0 (L), 31.9 (XL): about 32 s, not
# growing with the data (the graph's size does not).
COMPILE_S = 32.0
# "2026-11-27 (issue 11)", M 240x15: whole CLI process 60.2 s with cold caches, 7.5 s from the
# warm cache, import and writing included: the compile step itself about a second (taken from
# the compile cache: 1.0 s on the example data here, 9 s under load).
WARM_S = 1.0
# "2026-11-27 (issue 11)": post-hoc s 1.6 (M, 3,600 cells) and "(issue 11, second session)"
# 100 (XL-gaps, 400,000 cells), 2 chains x 1000 draws: 0.8 ms and 50 ms per draw, so
# p0 + 3600 p = 8e-4 and p0 + 400000 p = 5e-2: p = 1.25e-7 s per cell and draw, p0 = 3.5e-4 s
# per draw. Check: L-gaps (40,000 cells) gives 10.7 s against 12.7 s measured.
POSTHOC_PER_DRAW_S = 3.5e-4
POSTHOC_PER_CELL_DRAW_S = 1.25e-7
# "2026-11-27 (issue 11)", M 240x15 warm cache: whole process 7.5 s, of which sampling 1.8 s
# and post-hoc 1.5 s: about 4 s to import, build the model and write.
SETUP_S = 4.0
# "2026-12-07 (issue 27, second session)": one log density and gradient of L with gaps on the
# segment path 1,285 us against 522 us for complete L (rows "complete L", "L-gaps, segment
# path"): about 2.5 times.
GAPS_FACTOR = 2.5
# "2026-12-07 (issue 27, continuous time)": median whole fits 44.1 s (dates) against 14.9 s
# (session numbers) on the same rows: about 3 times.
CONTINUOUS_FACTOR = 3.0
# "2026-12-06 (issue 26, first session)": ms per draw 2.2 (k = 2, sampled traits) against 1.2
# (main model, integrated): about 2 times.
SAMPLED_TRAITS_FACTOR = 2.0
# The range logged: central / SPREAD to central * SPREAD (another machine, another load, the
# warm-up's length varying with the posterior's shape).
SPREAD = 2.0


@dataclass(frozen=True)
class TimeEstimate:
    """Central estimates in seconds of each part of a fit (see the module's formula);
    ``cached_compile_s``: the compile part if the compile cache holds the model, when that is
    not known before the fit (None: ``compile_s`` is known to apply)."""

    compile_s: float
    sample_s: float
    posthoc_s: float
    cached_compile_s: float | None = None
    setup_s: float = SETUP_S
    uncalibrated: tuple[str, ...] = ()

    def total_s(self, cached: bool = False) -> float:
        """The central estimate (``cached``: with the compile cache's compile part)."""
        part = self.cached_compile_s if cached and self.cached_compile_s is not None else None
        compiled = self.compile_s if part is None else part
        return self.setup_s + compiled + self.sample_s + self.posthoc_s

    def bounds(self, cached: bool = False) -> tuple[float, float]:
        """The range logged: the central estimate divided and multiplied by :data:`SPREAD`."""
        total = self.total_s(cached)
        return total / SPREAD, total * SPREAD

    def line(self) -> str:
        """The log line before a fit: the range(s) and the parts."""
        lo, hi = self.bounds()
        cached = ""
        if self.cached_compile_s is not None:
            c_lo, c_hi = self.bounds(cached=True)
            cached = f", or {duration(c_lo)} to {duration(c_hi)} if the compile cache has the model"
        return (
            f"expected time: roughly {duration(lo)} to {duration(hi)}{cached} (building about "
            f"{duration(self.setup_s)}, compiling about {duration(self.compile_s)}, sampling about {duration(self.sample_s)}, post-hoc "
            f"draws about {duration(self.posthoc_s)}; a rough estimate from the data's size, "
            "calibrated on a 2-core machine)"
            + (
                f"; not calibrated for {', '.join(self.uncalibrated)}: may take longer"
                if self.uncalibrated
                else ""
            )
        )


def estimate_fit_time(
    cells: int,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    *,
    gaps: bool = False,
    continuous: bool = False,
    sampled_traits: bool = False,
    warm: bool = False,
) -> TimeEstimate:
    """The estimate of :mod:`this module <bayes_alliance.inference.estimate>`'s formula.

    Parameters
    ----------
    cells
        Cells inside the patients' series (patients x sessions for complete data).
    draws, tune, chains, cores
        The sampler settings (chains run ``cores`` at a time).
    gaps
        Missing cells inside a series (the filter's path instead of the sums of products).
    continuous
        Continuous time on session dates.
    sampled_traits
        ``traits="sampled"`` (no post-hoc draws; a larger sampled model).
    warm
        A fit of the same data and spec is in the warm cache (no compiling).

    Raises
    ------
    ValueError
        A negative size or fewer than one draw, chain or core.
    """
    if cells < 0 or draws < 1 or tune < 0 or chains < 1 or cores < 1:
        raise ValueError(
            f"need cells >= 0, draws >= 1, tune >= 0, chains >= 1, cores >= 1; got {cells}, "
            f"{draws}, {tune}, {chains}, {cores}"
        )
    factor = 1.0
    if gaps:
        factor *= GAPS_FACTOR
    if continuous:
        factor *= CONTINUOUS_FACTOR
    if sampled_traits:
        factor *= SAMPLED_TRAITS_FACTOR
    waves = math.ceil(chains / cores)
    sample = (draws + tune) * waves * (PER_DRAW_S + PER_CELL_DRAW_S * cells) * factor
    per_draw = POSTHOC_PER_DRAW_S + POSTHOC_PER_CELL_DRAW_S * cells
    posthoc = 0.0 if sampled_traits else chains * draws * per_draw
    if warm:
        return TimeEstimate(WARM_S, sample, posthoc)
    return TimeEstimate(COMPILE_S, sample, posthoc, cached_compile_s=WARM_S)


def uncalibrated_options(spec: ModelSpec) -> tuple[str, ...]:
    """The options of ``spec`` the formula is not fitted to, in words (empty: none)."""
    named = (
        (bool(spec.random_slopes), "random slopes"),
        (spec.measurement_error, "measurement error"),
        (bool(spec.predictor_indicators or spec.outcome_indicators), "indicators"),
        (bool(spec.covariates or spec.baseline), "covariates"),
        (bool(spec.moderators), "moderators"),
        (spec.censored, "censoring"),
        (bool(spec.random_innovations), "random innovations"),
        (spec.innovations != "constant", "per-session innovations"),
        (spec.trend, "a trend"),
        (spec.session_means, "session means"),
        (bool(spec.random_lags), "random lags"),
    )
    return tuple(words for present, words in named if present)


def expected_time(
    data: SessionData, spec: ModelSpec, settings: SamplerRun, warm: bool = False
) -> TimeEstimate | None:
    """The estimate for a fit of ``data`` with ``spec`` and ``settings`` (None for samplers
    other than nutpie: the formula is not fitted to them)."""
    if settings.sampler != "nutpie":
        return None
    inside = data.in_series
    estimate = estimate_fit_time(
        int(inside.sum()),
        settings.draws,
        settings.tune,
        settings.chains,
        settings.n_cores,
        gaps=bool((inside & ~(data.observed_x & data.observed_y)).any()),
        continuous=spec.time_model == "continuous",
        sampled_traits=spec.traits != "integrated",
        warm=warm,
    )
    covariates = bool(data.roles.covariates)
    words = uncalibrated_options(spec)
    if covariates and "covariates" not in words:
        words = (*words, "covariates")
    return replace(estimate, uncalibrated=words)


def compare_line(estimate: TimeEstimate, actual_s: float, cached: bool = False) -> str:
    """The log line after a fit: the time it took beside the range estimated before it (the
    range for a model taken from the compile cache when ``cached``)."""
    lo, hi = estimate.bounds(cached)
    where = "within" if lo <= actual_s <= hi else ("below" if actual_s < lo else "above")
    return (
        f"the fit took {duration(actual_s)}; estimated before it: {duration(lo)} to "
        f"{duration(hi)} ({where} the range)"
    )


__all__ = [
    "COMPILE_S",
    "SPREAD",
    "TimeEstimate",
    "compare_line",
    "estimate_fit_time",
    "expected_time",
    "uncalibrated_options",
]
