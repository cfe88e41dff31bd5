# %% [markdown]
# # Why latent centring: the Nickell and Luedtke biases by simulation
#
# Centring on the observed patient mean treats a noisy summary as the trait. With eight sessions
# the lagged outcome's autoregression is biased downward by about -(1 + phi) / (T - 1) (Nickell
# 1981), and between-patient slopes are pulled toward within-patient slopes (Luedtke et al. 2008).

# %%
import warnings

import numpy as np
from _profile import DRAWS, TUNE

from bayes_alliance import SessionData, simulate
from bayes_alliance.analysis import classic
from bayes_alliance.inference.fit import fit
from bayes_alliance.spec.model_spec import ModelSpec

df, truth = simulate(
    seed=8,
    n_therapists=20,
    patients_per_therapist=8,
    sessions=8,
    state_effect=-0.2,
    outcome_autoregression=0.4,
    trait_effect_patient=-0.6,
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

# %% [markdown]
# The classic estimate: person-mean-centred outcome on its own centred lag.

# %%
phi = truth.params.outcome_autoregression
classic_ar = classic.within_autoregression(data, "outcome")
print(
    f"truth {phi}, classic {classic_ar:.3f}, bias {classic_ar - phi:+.3f}, Nickell approx {-(1 + phi) / 7:+.3f}"
)

# %% [markdown]
# The latent model estimates the patient means jointly with the dynamics.

# %%
result = fit(data, ModelSpec(), draws=DRAWS, tune=TUNE, random_seed=2, progressbar=False)
s = result.summary()
print(
    f"latent: {s.loc['outcome_autoregression', 'mean']:.3f} "
    f"[{s.loc['outcome_autoregression', 'ci_low']:.3f}, {s.loc['outcome_autoregression', 'ci_high']:.3f}]"
)

# %% [markdown]
# Between-patient slope: regressing patients' observed mean symptoms on their observed mean
# alliance attenuates toward the within slope; the latent trait effect does not.

# %%
mx = np.nanmean(data.x, axis=1)
my = np.nanmean(data.y, axis=1)
observed_between = np.polyfit(mx, my, 1)[0]
print(
    f"truth {truth.params.trait_effect_patient}, observed means {observed_between:.3f}, "
    f"latent {s.loc['trait_effect_patient', 'mean']:.3f}"
)
