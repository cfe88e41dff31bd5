r"""Is a measurement-error SD identified by the data? Checks of its posterior draws against its
half-normal prior.

With one indicator per session, the error variance omega^2 is told apart from the state
variance only through the dynamics: the error is white noise, so it lowers the lag-1
autocorrelation of the observed scores but not their variance, while the state carries over
from session to session (Schuurman & Hamaker 2019; docs/methods.md, section 'Measurement
error'). With autoregressions
near 0 or short series the likelihood is flat along the ridge "more error, less state
variance", and the posterior of the error SD is then either its prior again or split between a
small-error and a large-error solution. :func:`error_identification` flags both, so that a
report can say that the reliabilities and the error-corrected effects rest on the prior.

The checks (for draws from a HalfNormal(s) prior, SD ``s sqrt(1 - 2/pi)``):

* **close to the prior**: the posterior SD is more than :data:`SD_RATIO_MAX` (0.6) of the
  prior's SD, or the posterior's central 90% interval covers more than :data:`COVER_MAX` (0.8)
  of the prior's central 90% interval ``[s z_0.525, s z_0.975]``. For a roughly normal
  posterior, precision adds: posterior SD / prior SD = 1 / sqrt(1 + I), with I the data's
  information relative to the prior's, so a ratio above 0.6 means the data add less than about
  twice the prior's information (I < 1.8): the prior still makes up a third or more of what
  is known. The interval check catches wide posteriors that are not normal (skewed along the
  ridge), whose SD can understate how much of the prior's range they keep. Draws from the prior
  itself give a ratio near 1 and a coverage near 1.
* **bimodal**: a Gaussian kernel density estimate (Silverman's bandwidth,
  ``0.9 min(SD, IQR / 1.34) n^(-1/5)``, on 512 points over the draws' range) has an interior
  local minimum (a dip) whose density is below :data:`DIP_MAX` (0.75) of the smaller of the
  highest densities on either side, with more than :data:`MODE_MASS_MIN` (20%) of the draws on
  each side. The depth condition ignores the small wiggles of a density estimate from a few
  thousand draws (a few percent of the height); the mass condition ignores a minor bump in a
  tail, which says little about the two solutions of the ridge. Silverman's bandwidth
  oversmooths a bimodal density, so a dip it shows is real; a dip it hides is missed (the check
  is conservative).

Pure numpy, no PyMC.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

SD_RATIO_MAX = 0.6
COVER_MAX = 0.8
DIP_MAX = 0.75
MODE_MASS_MIN = 0.2
MIN_DRAWS = 50  # fewer finite draws: no check (a density estimate would be noise)
GRID = 512
HALF_NORMAL_SD = float(np.sqrt(1.0 - 2.0 / np.pi))  # SD of HalfNormal(1)
# Quantiles 0.05 and 0.95 of HalfNormal(1): Phi^-1(0.525) and Phi^-1(0.975).
HALF_NORMAL_90 = (0.06270677794321385, 1.959963984540054)


def prior_closeness(draws: np.ndarray, sigma: float) -> tuple[float, float]:
    """(posterior SD / prior SD, share of the prior's central 90% interval that the posterior's
    central 90% interval covers) for draws of a parameter with a HalfNormal(``sigma``) prior."""
    x = np.asarray(draws, dtype=float)
    ratio = float(x.std(ddof=1) / (sigma * HALF_NORMAL_SD))
    lo, hi = np.quantile(x, [0.05, 0.95])
    p_lo, p_hi = sigma * HALF_NORMAL_90[0], sigma * HALF_NORMAL_90[1]
    cover = max(0.0, min(hi, p_hi) - max(lo, p_lo)) / (p_hi - p_lo)
    return ratio, float(cover)


def kde(draws: np.ndarray, n_grid: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian kernel density estimate with Silverman's bandwidth: (grid, density)."""
    x = np.asarray(draws, dtype=float)
    q75, q25 = np.quantile(x, [0.75, 0.25])
    spread = min(float(x.std(ddof=1)), float(q75 - q25) / 1.34) or float(x.std(ddof=1))
    h = 0.9 * spread * x.size ** (-0.2)
    grid = np.linspace(x.min(), x.max(), n_grid)
    # Binned onto the grid first (linear binning would be finer; the grid is dense enough).
    counts = np.bincount(np.searchsorted(grid, x).clip(0, n_grid - 1), minlength=n_grid)
    z = (grid[:, None] - grid[None, :]) / h
    dens = np.exp(-0.5 * z**2) @ counts / (x.size * h * np.sqrt(2 * np.pi))
    return grid, dens


def is_bimodal(draws: np.ndarray) -> bool:
    """Whether the draws' density has a dip between two modes that each hold more than
    :data:`MODE_MASS_MIN` of the draws (see the module's notes)."""
    x = np.asarray(draws, dtype=float)
    grid, dens = kde(x)
    if not np.isfinite(dens).all() or dens.max() <= 0:
        return False
    inner = np.flatnonzero((dens[1:-1] < dens[:-2]) & (dens[1:-1] <= dens[2:])) + 1
    for m in inner:
        peak = min(dens[:m].max(), dens[m + 1 :].max())
        left = float((x < grid[m]).mean())
        if dens[m] < DIP_MAX * peak and min(left, 1.0 - left) > MODE_MASS_MIN:
            return True
    return False


def error_identification(
    post_draws: Mapping[str, np.ndarray], prior_sigma: Mapping[str, float]
) -> list[str]:
    """Messages for the measurement-error SDs whose data do not separate them from the dynamics.

    Parameters
    ----------
    post_draws
        Posterior draws by parameter name (any shape; non-finite draws are left out).
    prior_sigma
        The scale ``s`` of each parameter's HalfNormal(s) prior (the priors actually used);
        only names found in both are checked, in this mapping's order.

    Returns
    -------
    list of str
        One message per flagged parameter (none when all look identified): close to its prior
        (:func:`prior_closeness` above :data:`SD_RATIO_MAX` or :data:`COVER_MAX`) and/or
        bimodal (:func:`is_bimodal`). Fewer than :data:`MIN_DRAWS` finite draws are not checked.
    """
    out = []
    for name, sigma in prior_sigma.items():
        if name not in post_draws:
            continue
        x = np.asarray(post_draws[name], dtype=float).ravel()
        x = x[np.isfinite(x)]
        if x.size < MIN_DRAWS or not sigma > 0:
            continue
        reasons = []
        ratio, cover = prior_closeness(x, float(sigma))
        if ratio > SD_RATIO_MAX or cover > COVER_MAX:
            reasons.append(
                f"its posterior is close to its prior (posterior SD {ratio:.2f} of the prior's; "
                f"its 90% interval covers {cover:.0%} of the prior's)"
            )
        if is_bimodal(x):
            reasons.append("its posterior has two modes (a small-error and a large-error solution)")
        if reasons:
            out.append(
                f"{name}: " + " and ".join(reasons) + "; the data do not separate measurement "
                "error from the within-person dynamics, so the reliabilities and the "
                "error-corrected effects rest on the prior (more sessions, autoregression away "
                "from 0, or several indicators per session identify it)"
            )
    return out


STATE_FLOOR = 0.05  # innovation SD's 5% quantile below this share of its prior scale: near 0
STATE_SHARE = 0.5  # and its median below this share of the error SD's median


def state_collapse(
    post_draws: Mapping[str, np.ndarray],
    pairs: Mapping[str, tuple[str, str]],
    prior_sigma: Mapping[str, float],
) -> list[str]:
    """Messages for variables whose states vanish into the error: the other way the ridge
    "more error, less state" shows. With nearly white-noise states (autoregressions near 0)
    the likelihood cannot tell a state from an error, and the posterior may settle on "all
    error": the innovation SD near 0 with a narrow error SD, and lags that the data no longer
    inform. :func:`error_identification` sees a well-determined error SD there; this check
    flags a variable when its innovation SD's 5% quantile lies below :data:`STATE_FLOOR` (5%)
    of that SD's prior scale (the posterior reaches 0) and its median is below
    :data:`STATE_SHARE` (half) of the error SD's median.

    ``pairs`` maps a variable's name to (innovation SD name, error SD name); ``prior_sigma``
    holds the innovation SDs' half-normal prior scales."""
    out = []
    for var, (inn, err) in pairs.items():
        if inn not in post_draws or err not in post_draws or inn not in prior_sigma:
            continue
        x = np.asarray(post_draws[inn], dtype=float).ravel()
        e = np.asarray(post_draws[err], dtype=float).ravel()
        if x.size < MIN_DRAWS:
            continue
        if np.quantile(x, 0.05) < STATE_FLOOR * prior_sigma[inn] and np.median(x) < (
            STATE_SHARE * np.median(e)
        ):
            out.append(
                f"{var}: its states vanish into the measurement error (innovation SD "
                f"{np.median(x):.3g}, error SD {np.median(e):.3g}): with nearly white-noise "
                "states the data cannot tell a state from an error, and the lags are then "
                "informed by the prior alone; fit without the error term, or with more "
                "sessions per patient"
            )
    return out
