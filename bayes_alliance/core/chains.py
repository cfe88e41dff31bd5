r"""Why a convergence check failed: chains in different modes, a scale collapsing to zero, or
slow mixing (pure functions on draw arrays).

A high R-hat or a low ESS has three common causes, and only one of them is cured by more draws:

* **Different modes** (``MODES``). Every chain mixes well on its own (its split R-hat is near 1
  and its own ESS is adequate) but the chains' means lie far apart in units of the within-chain
  SD. The sampler found separate regions of high posterior density, and longer chains only stay
  where they are (Vehtari et al. 2021, section 4: R-hat cannot tell *why* chains disagree; the
  per-chain split R-hat can tell whether each chain is stationary). With chain means
  :math:`m_c` and within-chain variances :math:`s_c^2` the separation is

  .. math:: g = \frac{\max_c m_c - \min_c m_c}{\sqrt{\overline{s_c^2}}},

  and :data:`MODE_GAP` = 2 is far beyond the chance spread of well-mixing chains' means, which
  is about :math:`1/\sqrt{\mathrm{ESS}_c}` within-chain SDs.
* **A scale heading to zero** (``COLLAPSE``). An SD parameter (a name starting with ``sd_`` or
  holding ``_sd``) has a large share of draws (more than :data:`COLLAPSE_SHARE`) below a tiny
  fraction (:data:`COLLAPSE_FRACTION`) of its prior scale, or one chain's last quarter sits
  there. The posterior density grows without bound as the variance goes to 0 (a funnel, or a
  likelihood that is unbounded at a degenerate covariance, as when every patient starts at the
  same value); the sampler's statistics never settle, however long it runs. Under a half-normal
  prior of scale :math:`\sigma` the prior alone puts
  :math:`2\Phi(10^{-3}) - 1 \approx 0.08\%` of its mass below :math:`10^{-3}\sigma`, so 5%
  there is the likelihood pulling to the boundary, not prior mass.
* **Slow mixing** (``SLOW``): anything else (chains that drift, a low ESS); more draws help.

References: Vehtari, Gelman, Simpson, Carpenter & Buerkner (2021), Bayesian Analysis 16:667
(rank-normalised split R-hat, per-chain diagnostics); Betancourt & Girolami (2015), "Hamiltonian
Monte Carlo for hierarchical models" (funnels at a variance of zero).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import arviz_stats as azs
import numpy as np

MODES = "modes"
COLLAPSE = "collapse"
SLOW = "slow"
SITUATIONS = (MODES, COLLAPSE, SLOW)

MODE_GAP = 2.0
"""Chain means further apart than this many within-chain SDs are separate modes."""
CHAIN_RHAT_MAX = 1.05
"""A chain whose own split R-hat (first half against second) is below this is stationary."""
CHAIN_ESS_MIN = 50
"""... and mixes well in its mode when its own bulk ESS is at least this."""
COLLAPSE_FRACTION = 1e-3
"""A scale below this fraction of its prior scale is, for the sampler, zero."""
COLLAPSE_SHARE = 0.05
"""Share of draws there that marks a collapse (the half-normal prior alone puts 0.08% there)."""


@dataclass(frozen=True)
class Finding:
    """One parameter entry's situation: ``kind`` one of :data:`SITUATIONS`, with the numbers."""

    kind: str
    parameter: str
    detail: str


def is_scale(name: str) -> bool:
    """Whether a parameter is an SD (vocabulary names: ``sd_*``, ``*_sd_*``, ``*_sd``; an
    effect "per SD", such as ``end_change_per_sd``, is not)."""
    base = name.split("[", 1)[0]
    if base.endswith("_per_sd"):
        return False
    return base.startswith("sd_") or "_sd_" in base or base.endswith("_sd")


def _entries(name: str, arr: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The (chain, draw) arrays of each entry of a (chain, draw, ...) array, named ``name[i,j]``."""
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 2:
        return [(name, arr)]
    flat = arr.reshape(*arr.shape[:2], -1)
    shape = arr.shape[2:]
    out = []
    for k in range(flat.shape[2]):
        idx = ",".join(str(i) for i in np.unravel_index(k, shape))
        out.append((f"{name}[{idx}]", flat[:, :, k]))
    return out


def _collapse(x: np.ndarray, scale: float) -> str | None:
    tiny = COLLAPSE_FRACTION * scale
    share = float(np.mean(x < tiny))
    quarter = x[:, -max(x.shape[1] // 4, 1) :]
    stuck = np.median(quarter, axis=1) < tiny
    if share > COLLAPSE_SHARE or stuck.any():
        return (
            f"{share:.0%} of draws below {COLLAPSE_FRACTION:g} of its prior scale {scale:.3g} "
            f"(smallest draw {float(np.min(x)):.2g}"
            + (f"; {int(stuck.sum())} chain(s) stuck there" if stuck.any() else "")
            + ")"
        )
    return None


def _modes(x: np.ndarray) -> str | None:
    if x.shape[0] < 2 or x.shape[1] < 8:
        return None
    means = x.mean(axis=1)
    within = float(np.sqrt(np.mean(x.var(axis=1, ddof=1))))
    if not within > 0:
        return None
    gap = float((means.max() - means.min()) / within)
    if gap <= MODE_GAP:
        return None
    own_rhat = [float(azs.rhat(x[c : c + 1])) for c in range(x.shape[0])]
    own_ess = [float(azs.ess(x[c : c + 1])) for c in range(x.shape[0])]
    if max(own_rhat) >= CHAIN_RHAT_MAX or min(own_ess) < CHAIN_ESS_MIN:
        return None
    listed = ", ".join(f"{m:.3g}" for m in means)
    return (
        f"chain means {listed} lie {gap:.1f} within-chain SDs apart while each chain mixes "
        f"(own split R-hat <= {max(own_rhat):.3f}, own ESS >= {min(own_ess):.0f})"
    )


def diagnose(
    draws: Mapping[str, np.ndarray],
    scales: Mapping[str, float] | None = None,
) -> list[Finding]:
    """The situation of every entry whose chains show a modes or collapse pattern.

    Parameters
    ----------
    draws
        ``(chain, draw, ...)`` arrays by parameter name (or by an entry's ``name[coord]``).
    scales
        Prior scale of each SD parameter (the half-normal's sigma, say; by parameter name,
        for all its entries); an SD without one is
        measured against the 90th percentile of its own draws pooled over chains.

    Returns
    -------
    list of Finding
        ``COLLAPSE`` for SDs heading to 0 (checked first: a collapsing chain is also a separate
        "mode"), ``MODES`` for entries whose well-mixing chains disagree. Entries in neither
        are left to the caller, who knows whether they failed a check (then they are ``SLOW``).
    """
    scales = scales or {}
    out: list[Finding] = []
    for name, arr in draws.items():
        for label, x in _entries(name, arr):
            if not np.all(np.isfinite(x)):
                continue
            if is_scale(name):
                scale = scales.get(name, scales.get(name.split("[", 1)[0]))
                ref = float(np.max(scale)) if scale is not None else float(np.quantile(x, 0.9))
                text = _collapse(x, ref) if ref > 0 else None
                if text:
                    out.append(Finding(COLLAPSE, label, text))
                    continue
            text = _modes(x)
            if text:
                out.append(Finding(MODES, label, text))
    return out


def advice_for(findings: list[Finding]) -> list[str]:
    """Plain words for the modes and collapse findings: what they mean and what to change
    (never "run longer": more draws do not cure either)."""
    advice: list[str] = []
    modes = [f.parameter for f in findings if f.kind == MODES]
    collapse = [f.parameter for f in findings if f.kind == COLLAPSE]
    if collapse:
        advice.append(
            f"{', '.join(collapse)} head(s) to 0: the posterior piles up at a variance of zero "
            "(a spike or a funnel there, unbounded when the data are degenerate), so more "
            "draws will not help. The data do not "
            "inform this variance (a constant first session, e.g. every patient at a scale's "
            "ceiling at intake, makes the free first-session covariance and the patient SDs "
            "collapse together): use the stationary first session (--first-session "
            "stationary), drop that part of the model, or give the SD a prior that keeps it "
            "off 0; check the data for a column that does not vary."
        )
    if modes:
        advice.append(
            f"Chains sit in different modes for {', '.join(modes)}: each chain mixes well "
            "where it is but they do not agree, and longer chains stay where they are. The "
            "posterior has several separated solutions (or the data do not identify these "
            "parameters): compare the chains' estimates, make the model identifiable (fewer "
            "free parts, or informative priors on them), and do not report a pooled estimate."
        )
    return advice


__all__ = [
    "CHAIN_ESS_MIN",
    "CHAIN_RHAT_MAX",
    "COLLAPSE",
    "COLLAPSE_FRACTION",
    "COLLAPSE_SHARE",
    "MODES",
    "MODE_GAP",
    "SITUATIONS",
    "SLOW",
    "Finding",
    "advice_for",
    "diagnose",
    "is_scale",
]
