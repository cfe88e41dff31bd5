"""Model checks for the report: the posterior predictive check over sessions, the key
parameters whose chains the report plots, and the identification of measurement error
(:func:`identification_messages`).

The predictive check replicates every observed cell one session ahead, given the patient's
latent mean and the previous session's states, from the reduced form of the dynamics
(:func:`bayes_alliance.kernels.dynamics.reduced_form`)::

    w_rep,t = Phi*_i w_(t-1) + u_t,   u_t ~ N(0, Sigma*_t),   z_rep,t = M_t + w_rep,t

for both variables at once (their innovations correlated as the model says; in continuous time
each cell's own ``Phi_i(dt)`` and ``Q_i(dt)``), then compares the
observed mean of each variable at each session with the spread of the replicated means. A model
that misses a trend over sessions, or the size of session-to-session change, shows it here;
one histogram of all cells would hide both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core import diagnostics, vocab
from bayes_alliance.core.intervals import BAND_KIND, DEFAULT_CI_PROB, interval_bounds
from bayes_alliance.inference.state_group import states_dataset
from bayes_alliance.inference.unit_group import posterior_of
from bayes_alliance.kernels.gaps import no_error
from bayes_alliance.model.structure import dynamics_from, lookup
from bayes_alliance.model.variability import BY_PATIENT, own_innovations

if TYPE_CHECKING:
    from bayes_alliance.data.session_data import SessionData
    from bayes_alliance.inference.fit import FitResult
    from bayes_alliance.spec.model_spec import ModelSpec

v = vocab

N_REP = 200  # posterior draws replicated by the report's predictive check
KEY_PARAMETERS = (
    v.STATE_EFFECT,
    v.REVERSE_STATE_EFFECT,
    v.SAME_SESSION_EFFECT,
    v.OUTCOME_AUTOREGRESSION,
    v.PREDICTOR_AUTOREGRESSION,
    v.MODERATOR_EFFECT,
    v.TRAIT_EFFECT_PATIENT,
    v.TRAIT_EFFECT_THERAPIST,
    v.SD_STATE_EFFECT_PATIENT,
    v.SD_STATE_EFFECT_THERAPIST,
    # Weakly identified with one indicator per session: their chains are worth a look.
    v.MEASUREMENT_ERROR_SD_PREDICTOR,
    v.MEASUREMENT_ERROR_SD_OUTCOME,
)
# Where a fit may record its identification messages (a list of str): its provenance, which is
# saved with it. Without the entry the report computes them (identification_messages).
IDENTIFICATION_KEY = diagnostics.IDENTIFICATION_KEY
_States = dict[str, np.ndarray]  # one array per variable (vocab.PREDICTOR, vocab.OUTCOME)
# The reduced form's lag matrix (a, b, c, d) and innovation covariance (s11, s12, s22).
_Form = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[Any, Any]]


def key_draws(result: FitResult, max_rows: int = 10) -> dict[str, np.ndarray]:
    """Draws (chain, draw) of the named key parameters, plus the parameters with the worst
    R-hat and the smallest bulk ESS when they are others (where convergence problems show).

    Vector parameters contribute one entry per element, named ``name[coord]``.
    """
    post = result.idata.posterior
    names = [n for n in KEY_PARAMETERS if n in post]
    s = result.summary()
    if len(s):
        for worst in (s["r_hat"].idxmax(), s["ess_bulk"].idxmin()):
            base = str(worst).split("[")[0]
            if base not in names and base in post:
                names.append(base)
    out = entry_draws(post, names)
    return dict(list(out.items())[:max_rows])


def identification_messages(result: FitResult) -> list[str]:
    """Messages on measurement-error SDs that the data do not identify, for the convergence
    section of the report.

    ``result.provenance["identification_warnings"]`` (a list of str, or one str) when the fit
    recorded them; otherwise, for a model with measurement error, the fit's own check
    (:func:`bayes_alliance.inference.fit.identification_of`) on its draws. Empty without
    measurement error.
    """
    stored = result.provenance.get(IDENTIFICATION_KEY)
    if stored is not None:
        return [stored] if isinstance(stored, str) else [str(m) for m in stored]
    if not getattr(result.spec, "measurement_error", False):
        return []
    from bayes_alliance.inference.fit import identification_of

    return identification_of(result.idata, result.data, result.spec)


def entry_draws(post: Any, names: list[str], sep: str = ",") -> dict[str, np.ndarray]:
    """Draws (chain, draw) of each named variable of a posterior, a vector or matrix
    parameter one entry per element, named ``name[coord]`` (coords of several dims joined
    by ``sep``), for the trace and rank plots of both model families."""
    out: dict[str, np.ndarray] = {}
    for n in names:
        da = post[n]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            out[n] = np.asarray(da.values, dtype=float)
            continue
        flat = da.stack(entry=extra)
        for k in range(flat.sizes["entry"]):
            coord = flat["entry"].values[k]
            label = coord if not isinstance(coord, tuple) else sep.join(map(str, coord))
            out[f"{n}[{label}]"] = np.asarray(flat.isel(entry=k).values, dtype=float)
    return out


def _flat(post: xr.Dataset | xr.DataTree, name: str, picks: np.ndarray) -> np.ndarray:
    """The chosen draws of one variable, chains and draws flattened into one axis."""
    arr = np.asarray(post[name].values, dtype=float)
    return arr.reshape(-1, *arr.shape[2:])[picks]


def session_predictive(
    result: FitResult, ci_prob: float = DEFAULT_CI_PROB, n_rep: int = N_REP, seed: int = 0
) -> pd.DataFrame:
    """Observed means per session against one-step-ahead replicated means, both variables.

    Parameters
    ----------
    result
        A fit with stored states (``spec.store_states``).
    ci_prob
        Probability of the equal-tailed interval of the replicated means.
    n_rep
        Posterior draws used (chosen at random without replacement, at most all).
    seed
        Seed of the draw choice and of the replicates.

    Returns
    -------
    pandas.DataFrame
        One row per variable (``predictor``, ``outcome``) and session: ``session``, ``n``
        (cells compared), ``observed`` (their mean), ``replicated`` (median of the replicated
        means), ``rep_low``, ``rep_high``. Only cells observed at the session with the
        previous session's states known are compared (with lags; without lags every
        observed cell); sessions without such cells are left out.
    """
    post = posterior_of(result.idata)
    w = states_dataset(result.idata)
    if w is None:
        raise ValueError("the predictive check needs stored states (store_states=True)")
    data = result.data
    rng = np.random.default_rng(seed)
    total = post.sizes["chain"] * post.sizes["draw"]
    picks = np.sort(rng.choice(total, size=min(n_rep, total), replace=False))
    lag = 1 if result.spec.dynamics == "var1" else 0
    states = {
        v.PREDICTOR: _flat(w, "state_predictor", picks),
        v.OUTCOME: _flat(w, "state_outcome", picks),
    }
    previous = _previous_states(states, lag, data.x.shape[1])
    if result.spec.time_model == "continuous":
        form = _continuous_form(post, picks, result.spec, data, lag)
    else:
        form = _reduced_form(post, picks, result.spec)
    rep = _replicates(data, states, previous, form, lag, rng)
    compared = _compared_cells(data, states, previous, lag)
    now = slice(lag, data.x.shape[1])
    rows = [
        row
        for var, observed in ((v.PREDICTOR, data.x), (v.OUTCOME, data.y))
        for row in _session_rows(
            var, observed[:, now], rep[var], compared[var], data.sessions[now], ci_prob
        )
    ]
    return pd.DataFrame(
        rows, columns=["variable", "session", "n", "observed", "replicated", "rep_low", "rep_high"]
    )


def _previous_states(states: _States, lag: int, n_s: int) -> _States:
    """The states one session before each compared one, (draw, patient, session); zero
    without lags (the reduced form then only mixes the innovations)."""
    return {var: w[..., : n_s - lag] if lag else np.zeros_like(w) for var, w in states.items()}


def _col(a: np.ndarray) -> np.ndarray:
    """(draw,) -> (draw, 1, 1); (draw, session) -> (draw, 1, session)."""
    return a[:, None, None] if a.ndim == 1 else a[:, None, :]


# The parameters of the reduced form, read for the chosen draws.
_FORM_PARAMETERS = (
    v.PREDICTOR_AUTOREGRESSION,
    v.REVERSE_STATE_EFFECT,
    v.OUTCOME_AUTOREGRESSION,
    v.SAME_SESSION_EFFECT,
    v.INNOVATION_SD_PREDICTOR,
    v.INNOVATION_SD_OUTCOME,
    v.INNOVATION_CORR,
    v.MEASUREMENT_ERROR_SD_PREDICTOR,
    v.MEASUREMENT_ERROR_SD_OUTCOME,
)


def _reduced_form(post: xr.Dataset | xr.DataTree, picks: np.ndarray, spec: ModelSpec) -> _Form:
    """The reduced-form lag matrix (a, b, c, d) and innovation covariance (s11, s12, s22) of
    the chosen draws, each broadcasting over (draw, patient, session): the dynamics of
    :func:`bayes_alliance.model.structure.dynamics_from` at each patient's drawn slope."""
    arrays = {n: _col(_flat(post, n, picks)) for n in _FORM_PARAMETERS if n in post}
    if "state_effect_by_patient" in post:
        slope = _flat(post, "state_effect_by_patient", picks)[..., None]
    elif v.STATE_EFFECT in post:
        slope = _col(_flat(post, v.STATE_EFFECT, picks))
    else:
        slope = np.zeros((len(picks), 1, 1))
    if spec.random_innovations:  # each patient's innovation SDs, as drawn after sampling
        own = {n: _flat(post, n, picks)[..., None] for n in BY_PATIENT.values()}
        arrays, spec = own_innovations(arrays, spec, own)
    dyn = dynamics_from(lookup(arrays, spec), spec, slope=slope)
    error = list(dyn.error)
    # a variable with indicators is replicated as its marker: add the marker's residual
    for k, (name, listed) in enumerate(
        (
            (v.INDICATOR_SD_PREDICTOR, spec.predictor_indicators),
            (v.INDICATOR_SD_OUTCOME, spec.outcome_indicators),
        )
    ):
        if listed and name in post:
            error[k] = error[k] + _col(_flat(post, name, picks)[:, 0] ** 2)
    return dyn.phi, dyn.sigma, (error[0], error[1])


# The dims a draw's parameter may have besides (chain, draw): anything larger (the states,
# the cells' log-likelihoods) is not read per draw.
_PARAMETER_DIMS = {v.PATIENT, v.THERAPIST, "moderator"}


def _continuous_form(
    post: xr.Dataset | xr.DataTree, picks: np.ndarray, spec: ModelSpec, data: SessionData, lag: int
) -> _Form:
    """:func:`_reduced_form` of a continuous-time fit: each cell's own transition
    ``Phi_i(dt_it) = expm(A_i dt_it)`` and innovation covariance ``Q_i(dt_it) = S_i - Phi_i S_i
    Phi_i'`` (:func:`bayes_alliance.model.continuous.posthoc_dynamics`, as the post-hoc draws
    use), entries (draw, patient, session from ``lag`` on). The session-number parameters
    (autoregressions, innovation SDs) do not exist in such a fit: read by name they would
    default to 0 and leave the replicates without dynamics."""
    from bayes_alliance.inference.posthoc import PosthocGrid

    lay = PosthocGrid.of(data, spec)
    names = [str(n) for n in post.data_vars]
    names = [n for n in names if set(post[n].dims) - {"chain", "draw"} <= _PARAMETER_DIMS]
    flat = {n: _flat(post, n, picks) for n in names}
    phis, sigmas, errors = [], [], []
    shape = (data.n_patients, data.x.shape[1])
    for k in range(len(picks)):
        dyn = lay.dynamics(lookup({n: a[k] for n, a in flat.items()}, spec), spec)
        phis.append([np.broadcast_to(e, shape)[:, lag:] for e in dyn.phi])
        sigmas.append([np.broadcast_to(e, shape)[:, lag:] for e in dyn.sigma])
        errors.append([np.asarray(e, dtype=float) for e in dyn.error])
    phi = tuple(np.stack([d[j] for d in phis]) for j in range(4))
    sigma = tuple(np.stack([d[j] for d in sigmas]) for j in range(3))
    if not spec.measurement_error:  # the constant 0: the replicates add no error
        return phi, sigma, (0.0, 0.0)
    error = [_col(np.array([e[j] for e in errors]).reshape(len(picks))) for j in range(2)]
    return phi, sigma, (error[0], error[1])


def _replicates(
    data: SessionData,
    states: _States,
    previous: _States,
    form: _Form,
    lag: int,
    rng: np.random.Generator,
) -> _States:
    """One-step-ahead replicates of both variables, (draw, patient, session from ``lag`` on):
    the observed score minus its state plus the replicated state."""
    (a_, b_, c_, d_), (s11, s12, s22), (r_x, r_y) = form
    px, py = previous[v.PREDICTOR], previous[v.OUTCOME]
    mean_x = a_ * px + b_ * py
    mean_y = c_ * px + d_ * py
    # Correlated innovations by the Cholesky factor of the 2x2 reduced-form covariance.
    z1 = rng.standard_normal(mean_x.shape)
    z2 = rng.standard_normal(mean_x.shape)
    l11 = np.sqrt(s11)
    l21 = np.divide(s12, l11, out=np.zeros(np.broadcast(s12, l11).shape), where=l11 > 0)
    l22 = np.sqrt(np.maximum(s22 - l21**2, 0.0))
    now = slice(lag, data.x.shape[1])
    wx, wy = states[v.PREDICTOR], states[v.OUTCOME]
    rep_x = (data.x[:, now] - wx[..., now]) + mean_x + l11 * z1
    rep_y = (data.y[:, now] - wy[..., now]) + mean_y + l21 * z1 + l22 * z2
    if not no_error(r_x):
        # With measurement error, score minus state is the latent mean plus that cell's
        # drawn error; a replicate adds a fresh error, so its spread given the past states
        # is the model's (innovation plus error variance).
        rep_x = rep_x + np.sqrt(r_x) * rng.standard_normal(mean_x.shape)
        rep_y = rep_y + np.sqrt(r_y) * rng.standard_normal(mean_x.shape)
    return {v.PREDICTOR: rep_x, v.OUTCOME: rep_y}


def _compared_cells(data: SessionData, states: _States, previous: _States, lag: int) -> _States:
    """Per variable, the (patient, session) cells compared: observed, inside the series, with
    the previous session's states known (with lags) and the states finite."""
    n_s = data.x.shape[1]
    now = slice(lag, n_s)
    known_prev = np.isfinite(previous[v.PREDICTOR]).all(axis=0) & np.isfinite(
        previous[v.OUTCOME]
    ).all(axis=0)
    inside = data.in_series[:, now] & (data.in_series[:, : n_s - lag] if lag else True)
    return {
        var: inside
        & known_prev
        & np.isfinite(obs[:, now])
        & np.isfinite(states[var][..., now]).all(axis=0)
        for var, obs in ((v.PREDICTOR, data.x), (v.OUTCOME, data.y))
    }


def _session_rows(
    var: str,
    observed: np.ndarray,
    rep: np.ndarray,
    compared: np.ndarray,
    sessions: np.ndarray,
    ci_prob: float,
) -> list[dict[str, object]]:
    """One row per session with compared cells: observed mean against the replicated means."""
    rows: list[dict[str, object]] = []
    for k, session in enumerate(sessions):
        cells = compared[:, k]
        n = int(cells.sum())
        if n == 0:
            continue
        means = rep[:, cells, k].mean(axis=1)
        low, high = interval_bounds(means, ci_prob, BAND_KIND)
        rows.append(
            {
                "variable": var,
                "session": int(session),
                "n": n,
                "observed": float(observed[cells, k].mean()),
                "replicated": float(np.median(means)),
                "rep_low": float(low),
                "rep_high": float(high),
            }
        )
    return rows
