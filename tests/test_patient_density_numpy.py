"""The per-patient marginal densities without PyTensor (analysis/patient_density.py): equal to
the model's compiled Kalman kernel (the earlier path, in a PyTensor module) and to the 4-state
numpy filter to 1e-9, and to a dense multivariate normal of one patient's observed cells built
here with scipy; computed in a process that never imports PyMC or PyTensor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg, stats

from bayes_alliance.analysis import patient_density
from bayes_alliance.core import vocab
from bayes_alliance.inference import filter_draws
from bayes_alliance.kernels import gaps, marginal
from bayes_alliance.model.covariates import baseline_level, baseline_values, covariate_values
from bayes_alliance.model.grid import SeriesGrid, grid_sums
from bayes_alliance.model.structure import (
    dynamics_from,
    known_means,
    lookup,
    therapist_part,
    trait_cov,
)
from bayes_alliance.model.variability import own_innovations
from bayes_alliance.spec.model_spec import ModelSpec
from tests.likelihood_cases import COMPLETE, ROWS, session_data
from tests.test_patient_density import VARIANTS, _dense, _posterior

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "gaps, three levels": (ROWS, dict()),
    "gaps, measurement error": (ROWS, dict(measurement_error=True)),
    "gaps, slopes, session innovations": (
        ROWS,
        dict(random_slopes=("patient",), innovations="session", first_session="free"),
    ),
    "complete, three levels": (COMPLETE, dict()),
    "complete, lag-0, slopes": (
        COMPLETE,
        dict(same_session="predictor_to_outcome", random_slopes=("patient",)),
    ),
}


def _per_draw(post, data, spec, route):
    """The earlier implementation, one draw at a time (B, P): complete series without error
    through the likelihood's grid sums, other grids through a filter, ``route`` "numpy"
    (gaps.filter_factor) or "compiled" (the kernel of kernels/kalman_op.py, via
    filter_draws.gap_filter)."""
    grid = SeriesGrid.of(data)
    n_b = len(post[vocab.INNOVATION_SD_OUTCOME])
    out = np.empty((n_b, data.n_patients))
    for i in range(n_b):
        p = {k: val[i] for k, val in post.items()}
        get = lookup(p, spec)
        dyn_post, dyn_spec = own_innovations(p, spec, p)
        dyn = dynamics_from(
            lookup(dyn_post, dyn_spec, draws_first=False),
            dyn_spec,
            slope=p.get("state_effect_by_patient"),
        )
        known = known_means(
            get,
            spec,
            baseline_values(data, spec),
            baseline_level(data, spec),
            tj=data.patient_therapist,
            zc=covariate_values(data, spec),
        )
        t = (data.sessions - data.sessions[0]).astype(float)
        kx, ky = known.cells(t)
        if spec.therapist_level:
            top_x, top_y = therapist_part(get, data.patient_therapist)
            kx, ky = kx + top_x[:, None], ky + top_y[:, None]
        complete = not (grid.miss_x.size or grid.miss_y.size)
        if complete and not (spec.measurement_error or spec.random_innovations):
            shape = np.shape(grid.x)
            sums = grid_sums(
                grid.x - np.broadcast_to(kx, shape),
                grid.y - np.broadcast_to(ky, shape),
                grid.containers(),
                dyn,
                xp=np,
            )
            log_c, factor = marginal.series_factor(sums, dyn.phi, dyn.first)
        elif route == "numpy":
            cells = grid.gap_cells(kx, ky)
            log_c, factor, _ = gaps.filter_factor(
                cells,
                dyn.phi,
                dyn.sigma,
                dyn.first,
                data.n_sessions,
                dyn.by_session,
                error=dyn.error,
            )
        else:
            log_c, factor = filter_draws.gap_filter(grid.gap_cells(kx, ky), dyn, dyn.error)
        out[i] = log_c + marginal.mean_integral(factor, (0.0, 0.0), trait_cov(get, vocab.PATIENT))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_numpy_densities_equal_the_compiled_kernel_and_the_state_filter(case):
    rows, opts = CASES[case]
    data = session_data(rows)
    spec = ModelSpec(**opts)
    post = _posterior(data, spec, np.random.default_rng(5), n_draws=4)
    ours = patient_density.patient_loglik(post, data, spec)
    # the route taken: per-patient sums for complete series with one known mean per patient
    # and a shared innovation covariance, the compiled forward filter otherwise
    sums = patient_density._moments(data, spec) is not None
    assert sums == (rows is COMPLETE and opts.get("innovations") != "session")
    flat = {
        k: np.asarray(val, dtype=float).reshape(4, *np.shape(val)[2:]) for k, val in post.items()
    }
    # the 4-state filter over (w, M) of the trend models, an independent route
    states = patient_density._filter(flat, data, spec).reshape(ours.shape)
    np.testing.assert_allclose(ours, states, rtol=0, atol=1e-9)
    # the earlier per-draw implementation (numpy) and its compiled-kernel twin
    for route in ("numpy", "compiled"):
        before = _per_draw(flat, data, spec, route).reshape(ours.shape)
        np.testing.assert_allclose(ours, before, rtol=0, atol=1e-9)


def test_draws_in_chunks_equal_all_at_once(monkeypatch):
    """The chunks over draws (CHUNK_CELLS) change no value, on either route."""
    for rows in (ROWS, COMPLETE):
        data = session_data(rows)
        spec = ModelSpec()
        post = _posterior(data, spec, np.random.default_rng(6), n_draws=5)
        whole = patient_density.patient_loglik(post, data, spec)
        monkeypatch.setattr(patient_density, "CHUNK_CELLS", 2 * data.n_patients * data.n_sessions)
        np.testing.assert_array_equal(patient_density.patient_loglik(post, data, spec), whole)
        monkeypatch.undo()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_complete_series_through_the_sums_equal_the_dense_marginal(variant):
    """Every model option of test_patient_density on complete series, where the densities
    take the likelihood's closed-form sums instead of the filter."""
    opts = VARIANTS[variant]
    data = session_data(
        COMPLETE, therapist=opts.get("therapist_level", True), experience="experience" in str(opts)
    )
    spec = ModelSpec(**opts)
    post = _posterior(data, spec, np.random.default_rng(8))
    ours = patient_density.patient_loglik(post, data, spec)
    for draw in range(3):
        np.testing.assert_allclose(ours[0, draw], _dense(data, spec, post, draw), rtol=1e-9)


def _dense_one_patient(data, p, i):
    """log N(z_obs; mu, V) of patient ``i``'s observed cells for one parameter point ``p``
    (three levels, measurement error, stationary first session): V built entry by entry from
    the VAR(1)'s autocovariances, the latent mean's covariance on every pair of cells and the
    error variances on the diagonal."""
    phi = np.array(
        [
            [p["predictor_autoregression"], p["reverse_state_effect"]],
            [p["state_effect"], p["outcome_autoregression"]],
        ]
    )
    sx, sy, r = p["innovation_sd_predictor"], p["innovation_sd_outcome"], p["innovation_corr"]
    sigma = np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]])
    gamma0 = linalg.solve_discrete_lyapunov(phi, sigma)  # Var(w_t) = Phi Var Phi' + Sigma
    vx, b = p["sd_patient_predictor"] ** 2, p["trait_effect_patient"]
    tau = np.array([[vx, b * vx], [b * vx, b**2 * vx + p["sd_patient_outcome"] ** 2]])
    cols = np.arange(data.first[i], data.last[i] + 1)
    n = len(cols)
    cov = np.zeros((2 * n, 2 * n))
    for a in range(n):
        for c in range(n):
            lag = cols[c] - cols[a]
            # Cov(w_t, w_s) = Phi^(t-s) Gamma0 for t >= s; Cov(w_s, w_t) is its transpose
            step = np.linalg.matrix_power(phi, abs(lag)) @ gamma0
            cov[2 * a : 2 * a + 2, 2 * c : 2 * c + 2] = step.T if lag >= 0 else step
    cov += np.kron(np.ones((n, n)), tau)
    cov += np.kron(
        np.eye(n),
        np.diag([p["measurement_error_sd_predictor"] ** 2, p["measurement_error_sd_outcome"] ** 2]),
    )
    j = data.patient_therapist[i]
    ax = p["sd_therapist_predictor"] * p["therapist_dev_predictor_raw"][j]
    ay = p["sd_therapist_outcome"] * p["therapist_dev_outcome_raw"][j]
    mean = np.tile(
        [
            p["intercept_predictor"] + ax,
            p["intercept_outcome"] + ay + p["trait_effect_therapist"] * ax,
        ],
        n,
    )
    z = np.column_stack([data.x[i, cols], data.y[i, cols]]).ravel()
    keep = ~np.isnan(z)
    return stats.multivariate_normal(mean[keep], cov[np.ix_(keep, keep)]).logpdf(z[keep])


def test_one_patients_density_is_the_dense_normal_of_their_observed_cells():
    data = session_data(ROWS)
    spec = ModelSpec(measurement_error=True)
    post = _posterior(data, spec, np.random.default_rng(11), n_draws=2)
    ours = patient_density.patient_loglik(post, data, spec)
    # patient A: a skipped session and a missing outcome; B: a missing predictor
    for name in ("A", "B"):
        i = list(data.coords["patient"]).index(name)
        for draw in range(2):
            p = {k: val[0, draw] for k, val in post.items()}
            assert ours[0, draw, i] == pytest.approx(_dense_one_patient(data, p, i), abs=1e-9)


def test_the_densities_import_neither_pymc_nor_pytensor():
    code = (
        "import json, sys\n"
        "import numpy as np, pandas as pd\n"
        "from bayes_alliance import SessionData\n"
        "from bayes_alliance.analysis.patient_density import patient_loglik\n"
        "from bayes_alliance.spec.model_spec import ModelSpec\n"
        "rows = json.loads(sys.argv[1])\n"
        "df = pd.DataFrame(rows, columns=['therapist', 'patient', 'session', 'x', 'y'])\n"
        "data = SessionData.from_frame(df, patient='patient', session='session',\n"
        "    predictor='x', outcome='y', therapist='therapist')\n"
        "spec = ModelSpec(measurement_error=True)\n"
        "names = ['sd_patient_predictor', 'sd_patient_outcome', 'trait_effect_patient',\n"
        "    'sd_therapist_predictor', 'sd_therapist_outcome', 'trait_effect_therapist',\n"
        "    'intercept_predictor', 'intercept_outcome', 'predictor_autoregression',\n"
        "    'reverse_state_effect', 'outcome_autoregression', 'state_effect',\n"
        "    'innovation_sd_predictor', 'innovation_sd_outcome', 'innovation_corr',\n"
        "    'measurement_error_sd_predictor', 'measurement_error_sd_outcome']\n"
        "post = {n: np.full((1, 2), 0.3) for n in names}\n"
        "post['therapist_dev_predictor_raw'] = np.zeros((1, 2, 2))\n"
        "post['therapist_dev_outcome_raw'] = np.zeros((1, 2, 2))\n"
        "ll = patient_loglik(post, data, spec)\n"
        "print(json.dumps({'finite': bool(np.isfinite(ll).all()), 'pymc': 'pymc' in sys.modules,\n"
        "    'pytensor': 'pytensor' in sys.modules}))\n"
    )
    rows = [[r[0], r[1], r[2], r[3], r[4]] for r in ROWS]
    rows = [[None if isinstance(x, float) and np.isnan(x) else x for x in r] for r in rows]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(rows)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"finite": True, "pymc": False, "pytensor": False}
