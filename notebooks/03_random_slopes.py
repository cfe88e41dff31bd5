# %% [markdown]
# # Cross-lagged model with random slopes: therapist versus patient variation
#
# Does the state effect of alliance differ between therapists, or only between patients of the
# same therapist? A random state slope at both levels separates the two.

# %%
import warnings

from _profile import DRAWS, TUNE

from bayes_alliance import SessionData, simulate
from bayes_alliance.inference.fit import fit
from bayes_alliance.spec.model_spec import ModelSpec

df, truth = simulate(
    seed=31,
    n_therapists=25,
    patients_per_therapist=6,
    sessions=12,
    sd_state_effect_patient=0.12,
    sd_state_effect_therapist=0.08,
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    data = SessionData.from_frame(
        df,
        patient="patient",
        therapist="therapist",
        session="session",
        predictor="alliance",
        outcome="symptoms",
    )

# %%
spec = ModelSpec(random_slopes=("patient", "therapist"))
result = fit(data, spec, draws=DRAWS, tune=TUNE, random_seed=3, progressbar=False)
s = result.summary()
s.loc[["state_effect", "sd_state_effect_patient", "sd_state_effect_therapist"]].round(3)

# %% [markdown]
# Each patient's own state effect is among the per-unit draws (the `unit_draws` group of the
# result's DataTree, beside `posterior`, which holds the model's named parameters):

# %%
per_patient = result.idata["unit_draws"]["state_effect_by_patient"].mean(("chain", "draw"))
print(per_patient.to_series().describe().round(3))
print(
    "truth: sd patient",
    truth.params.sd_state_effect_patient,
    "sd therapist",
    truth.params.sd_state_effect_therapist,
)
