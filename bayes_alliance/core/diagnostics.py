"""Posterior summaries and convergence checks (pure functions on a DataTree)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core import chains
from bayes_alliance.core.intervals import BAND_KIND, CI_KIND, DEFAULT_CI_PROB

# Thresholds: Vehtari et al. (2021), Bayesian Analysis 16:667 (R-hat, ESS); Betancourt (2016) (BFMI).
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
BFMI_MIN = 0.3


class ConvergenceWarning(UserWarning):
    """The sampler's diagnostics say the posterior draws may not be trustworthy."""


class IdentificationWarning(UserWarning):
    """The data do not separate a parameter from others (its posterior stays close to its
    prior, or has two modes): measurement error from the dynamics, say."""


# Where a fit records its identification messages (a list of str in its provenance).
IDENTIFICATION_KEY = "identification_warnings"


@dataclass
class Convergence:
    """Result of :func:`check_convergence`."""

    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    min_bfmi: float
    n_draws: int
    problems: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    situations: dict[str, list[str]] = field(default_factory=dict)
    """Parameters by situation (:data:`bayes_alliance.core.chains.SITUATIONS`) when a check
    failed: chains in different ``modes``, a scale's ``collapse`` to 0, ``slow`` mixing."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        if self.ok:
            return "convergence checks passed"
        return (
            "CONVERGENCE CHECK FAILED: "
            + "; ".join(self.problems)
            + ". Do not report these estimates. What to change: "
            + " ".join(self.advice)
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "max_r_hat": self.max_r_hat,
            "min_ess_bulk": self.min_ess_bulk,
            "min_ess_tail": self.min_ess_tail,
            "divergences": self.divergences,
            "min_bfmi": self.min_bfmi,
            "problems": list(self.problems),
            "advice": list(self.advice),
            "situations": {k: list(val) for k, val in self.situations.items()},
        }


def _bfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain: mean squared energy change over energy variance (Betancourt 2016)."""
    num = np.mean(np.diff(energy, axis=1) ** 2, axis=1)
    return num / np.var(energy, axis=1)


def _checked(ci_prob: float, ci_kind: str) -> None:
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must lie in (0, 1), got {ci_prob}")
    if ci_kind not in (CI_KIND, BAND_KIND):
        raise ValueError(f"ci_kind must be 'hdi' or 'eti', got {ci_kind!r}")


def _bounds_renamed(s: pd.DataFrame) -> pd.DataFrame:
    lo = next(c for c in s.columns if c.endswith("_lb"))
    hi = next(c for c in s.columns if c.endswith("_ub"))
    return s.rename(columns={lo: "ci_low", hi: "ci_high"})


def summarise(
    idata: xr.DataTree,
    names: list[str],
    ci_prob: float = DEFAULT_CI_PROB,
    ci_kind: str = CI_KIND,
) -> pd.DataFrame:
    """Posterior summary with the project's column names (``SUMMARY_COLUMNS`` of
    :mod:`bayes_alliance.inference.results`)."""
    _checked(ci_prob, ci_kind)
    s = azs.summary(idata, var_names=names, ci_kind=ci_kind, ci_prob=ci_prob, round_to="none")
    out = _bounds_renamed(s)[
        ["mean", "sd", "ci_low", "ci_high", "ess_bulk", "ess_tail", "r_hat"]
    ].astype(float)
    out.index.name = "parameter"
    return out


def intervals(
    idata: xr.DataTree,
    names: list[str],
    ci_prob: float = DEFAULT_CI_PROB,
    ci_kind: str = CI_KIND,
) -> pd.DataFrame:
    """Mean, sd, ci_low and ci_high only: the numbers :func:`summarise` gives, without the
    ESS and R-hat (for quick views)."""
    _checked(ci_prob, ci_kind)
    s = azs.summary(
        idata, var_names=names, kind="stats", ci_kind=ci_kind, ci_prob=ci_prob, round_to="none"
    )
    out = _bounds_renamed(s)[["mean", "sd", "ci_low", "ci_high"]].astype(float)
    out.index.name = "parameter"
    return out


def check_convergence(
    idata: xr.DataTree,
    names: list[str],
    scales: Mapping[str, float] | None = None,
    measurement_error: bool = False,
) -> Convergence:
    """R-hat, bulk and tail ESS of the named parameters, divergences and E-BFMI.

    When R-hat or ESS fail, :func:`bayes_alliance.core.chains.diagnose` says why: chains in
    different modes or an SD heading to 0 (``scales``: the prior scale of each SD parameter)
    get advice that names them and the situation; only the remaining parameters (slow
    mixing) get "run longer", with the draws they need. ``measurement_error``: the fit had a
    measurement-error term, so advice about it (and about dropping it) applies.
    """
    names = [n for n in names if n in idata.posterior]
    post = idata.posterior
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    s = summarise(idata, names) if names else pd.DataFrame()
    max_rhat = float(s["r_hat"].max()) if len(s) else float("nan")
    min_bulk = float(s["ess_bulk"].min()) if len(s) else float("nan")
    min_tail = float(s["ess_tail"].min()) if len(s) else float("nan")
    stats = idata.sample_stats
    div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    bfmi = (
        float(np.min(_bfmi(stats["energy"].values)))
        if "energy" in stats and n_draws > 2
        else float("nan")
    )
    problems: list[str] = []
    advice: list[str] = []
    worst: list[str] = []
    if n_chains > 1 and max_rhat > RHAT_MAX:
        worst.append(str(s["r_hat"].idxmax()))
        problems.append(f"R-hat {max_rhat:.3f} > {RHAT_MAX} (worst: {worst[-1]})")
    ess_min = ESS_PER_CHAIN_MIN * n_chains
    if min_bulk < ess_min or min_tail < ess_min:
        worst.append(str(s["ess_bulk"].idxmin()))
        problems.append(
            f"ESS bulk {min_bulk:.0f} / tail {min_tail:.0f} < {ess_min} (worst: {worst[-1]})"
        )
    situations: dict[str, list[str]] = {}
    if worst:
        failing = _failing(s, n_chains, ess_min)
        findings = [
            f
            for f in chains.diagnose(_row_draws(post, names, s.index), scales)
            if f.parameter in failing
        ]
        named = {f.parameter for f in findings}
        for f in findings:
            situations.setdefault(f.kind, []).append(f.parameter)
            problems.append(f"{f.parameter}: {_SITUATION_WORDS[f.kind]} ({f.detail})")
        slow = [p for p in failing if p not in named]
        if slow:
            situations[chains.SLOW] = slow
        advice += chains.advice_for(findings)
        advice += _slow_advice(
            s.loc[slow], slow, ess_min, after_other=bool(findings), error=measurement_error
        )
    if div:
        problems.append(f"{div} divergent transitions after tuning")
        advice.append(
            "Divergences mean the sampler could not follow the posterior's curvature: longer "
            "tuning (--tune) sometimes helps; random slopes or session-specific innovations "
            "that the data hardly inform are the usual cause: simplify them."
        )
    if bfmi == bfmi and bfmi < BFMI_MIN:
        problems.append(f"E-BFMI {bfmi:.2f} < {BFMI_MIN}")
        advice.append(
            "Low E-BFMI means heavy tails the momentum resampling cannot cross: more informative "
            "priors on the variance parameters usually help."
        )
    return Convergence(
        max_rhat, min_bulk, min_tail, div, bfmi, n_chains * n_draws, problems, advice, situations
    )


_SITUATION_WORDS = {
    chains.MODES: "chains in different modes",
    chains.COLLAPSE: "an SD heading to 0",
}


def _row_draws(post: xr.DataTree, names: list[str], rows: pd.Index) -> dict[str, np.ndarray]:
    """(chain, draw) arrays keyed by the summary's row names (``name[coord]`` for the
    entries of a vector parameter, in the summary's order, which is the flattened order)."""
    out: dict[str, np.ndarray] = {}
    for n in names:
        arr = np.asarray(post[n].values, dtype=float)
        if arr.ndim == 2:
            out[n] = arr
            continue
        labels = [str(r) for r in rows if str(r).startswith(n + "[")]
        flat = arr.reshape(*arr.shape[:2], -1)
        if len(labels) == flat.shape[2]:
            out.update({r: flat[:, :, k] for k, r in enumerate(labels)})
    return out


def _failing(s: pd.DataFrame, n_chains: int, ess_min: float) -> list[str]:
    """Rows of the summary that fail R-hat (with several chains) or ESS."""
    bad = (s["ess_bulk"] < ess_min) | (s["ess_tail"] < ess_min)
    if n_chains > 1:
        bad |= s["r_hat"] > RHAT_MAX
    return [str(p) for p in s.index[bad.to_numpy()]]


def _slow_advice(
    s: pd.DataFrame, slow: list[str], ess_min: float, after_other: bool, error: bool = False
) -> list[str]:
    """The advice for parameters that mix slowly: run longer (by the draws the worst of them
    needs), and what helps for the parameter kinds known to mix slowly. When modes or a
    collapse were found, the slow ones are likely their consequence: fix those first. The
    measurement-error ridge is named only for a fit with that term (``error``): advice to
    drop a term the fit never had would be wrong."""
    if not slow:
        return []
    if after_other:
        advice = [
            f"The other failing parameters ({', '.join(slow)}) may follow from the above: "
            "fix it and refit before running longer."
        ]
    else:
        ess = float(np.nanmin(s[["ess_bulk", "ess_tail"]].to_numpy()))
        need = max(2.0 * ess_min / max(ess, 1.0), 2.0)
        advice = [
            f"Slow mixing ({', '.join(slow)}): run longer: about {need:.0f} times the draws "
            "(--draws), with at least as many tuning steps (--tune), and 4 chains (--chains 4) "
            "so that R-hat can detect chains that disagree."
        ]
    if any("therapist" in w for w in slow):
        advice.append(
            "Therapist-level quantities are informed by the number of therapists, not of "
            "sessions: with few therapists consider a two-level model (--no-therapist) or an "
            "informative prior on the therapist-level SDs."
        )
    if error and any("measurement_error" in w or "innovation_sd" in w for w in slow):
        advice.append(
            "With one rating per session, measurement error and the dynamics trade off "
            "along a ridge the sampler crosses slowly: run several times longer, or give "
            "several indicators per session (they identify the error), or fit without "
            "--measurement-error when the ratings are reliable."
        )
    if any("state_effect_patient" in w or "state_effect_therapist" in w for w in slow):
        advice.append(
            "A random-slope SD near zero makes a funnel: drop that level from "
            "--random-slopes if its SD is small."
        )
    return advice
