# %% [markdown]
# # Quickstart: trait and state alliance on the example data
#
# The example data hold session-by-session alliance and symptom ratings of 317 patients seen by
# 40 therapists. We separate each patient's usual (trait) alliance from its session-to-session
# deviations (states) and ask how each relates to symptoms.

# %%
import warnings

from _profile import DRAWS, TUNE

from bayes_alliance import SessionData
from bayes_alliance.datasets import load_example
from bayes_alliance.fit import fit

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

# %%
s = result.summary()
print(
    f"state effect {s.loc['state_effect', 'mean']:.3f}, trait effect {s.loc['trait_effect_patient', 'mean']:.3f}"
)
result.r2().query("equation == 'outcome' and denominator == 'total'").round(3)

# %%
result.effects().round(3)
