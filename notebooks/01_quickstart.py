# %% [markdown]
# # Quickstart: trait and state alliance on the example data
#
# The example data hold session-by-session alliance and symptom ratings of 317 patients seen by
# 40 therapists. We separate each patient's usual (trait) alliance from its session-to-session
# deviations (states) and ask how each relates to symptoms.

# %%
import warnings

import arviz_plots as azp
from _profile import DRAWS, TUNE

import bayes_alliance as ba
from bayes_alliance import SessionData
from bayes_alliance.datasets import load_example
from bayes_alliance.inference.fit import fit

df = load_example()
df.head()

# %% [markdown]
# Validate the data and build the patient x session grid. Problems would be listed all at once;
# here three patients have fewer than three sessions, which the warning reports.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    data = SessionData.from_frame(
        df,
        patient="patient",
        therapist="therapist",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        covariates=["moderator"],
    )
for w in caught:
    print("warning:", w.message)
print(data.describe())

# %% [markdown]
# Fit the joint model: latent-centred traits at patient and therapist level and a within-person
# cross-lagged VAR(1) on the states.

# %%
result = fit(data, draws=DRAWS, tune=TUNE, random_seed=1, progressbar=False)
print(result.convergence.message())
result.summary().round(3)

# %% [markdown]
# The state effect is the change in next-session symptoms after a session with alliance one point
# above the patient's own usual level; the patient trait effect compares patients' usual levels.

# %% [markdown]
# In a notebook the result shows itself as a short summary: model, data, sampler settings and
# seed, the convergence check and the key effects. `result.idata` is an ArviZ DataTree with the
# posterior, the observed data and posterior predictive replicates of every observed score, so
# ArviZ's own plots work on it unchanged.

# %%
result  # noqa: B018  (a notebook shows the short summary)

# %%
pc = azp.plot_ppc_dist(result.idata, var_names=["outcome"], num_samples=50)

# %% [markdown]
# The same fit in one call, from the table (or a file path: CSV, Parquet, Excel, SPSS, Stata)
# with the column roles and any model option as keywords. Without a seed one is drawn and
# recorded in `result.provenance`.

# %%
again = ba.fit_frame(
    df,
    patient="patient",
    therapist="therapist",
    session="session",
    predictor="alliance",
    outcome="symptoms",
    draws=DRAWS,
    tune=TUNE,
    random_seed=1,
    progressbar=False,
)
print(
    f"state effect {again.draws('state_effect').mean():.3f} (one call) vs {result.draws('state_effect').mean():.3f}"
)

# %%
s = result.summary()
print(
    f"state effect {s.loc['state_effect', 'mean']:.3f}, trait effect {s.loc['trait_effect_patient', 'mean']:.3f}"
)
result.r2().query("equation == 'outcome' and denominator == 'total'").round(3)

# %%
result.effects().round(3)
