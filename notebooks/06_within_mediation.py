# %% [markdown]
# # Within-patient mediation: does alliance work through emotional processing?
#
# Process research asks not only *whether* a better alliance is followed by fewer symptoms but
# *how*. One answer: in a session where the alliance is better than usual for this patient, the
# patient processes emotions more deeply in the next session, and deeper processing is followed
# by fewer symptoms in the session after that. This is a question about each patient's own
# sessions (the state-like, within-patient level), so the three series have to be split into
# each patient's usual level (trait) and the session's deviation from it (state) before the
# paths are estimated.
#
# The shipped data `mediation_within.csv` were simulated with known values: 120 patients (20
# therapists x 6 patients), 12 sessions each, alliance, emotional processing and symptoms
# rated every session (3% of the ratings missing) and a post-treatment symptom score.

# %%
import warnings

import numpy as np
import pandas as pd
from _profile import DRAWS, TUNE

from bayes_alliance import datasets
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.fit import fit_mechanisms
from bayes_alliance.mechanisms.spec import MechanismSpec

df = datasets.load_mediation_within()
record = datasets.mediation_within_record()
truth = record["effects"]
df.head()

# %% [markdown]
# ## The model
#
# For session *t* of patient *i* (therapist *j*) the three ratings, alliance *x*, emotional
# processing *m* and symptoms *y*, are stacked in a vector *z*. Each is the patient's trait
# (a latent mean: the intercept, a therapist deviation and a patient deviation) plus the
# session's state *w*:
#
#     z_ti = mu + u_j + v_i + w_ti
#     w_ti = Phi_i w_(t-1)i + e_ti
#
# The lag matrix `Phi_i` holds every carry-over from one session to the next. Three of its
# entries are the mediation paths (the lagged 1-1-1 design: alliance at *t*, processing at
# *t+1*, symptoms at *t+2*):
#
# - a path, `a_i = Phi_i[m, x]`: alliance above the patient's usual level -> processing in the
#   next session;
# - b path, `b_i = Phi_i[y, m]`: processing above usual -> symptoms in the next session;
# - direct path, `c' = Phi[y, x]`: alliance -> next-session symptoms, not through processing.
#
# The a and b paths vary between patients, `a_i = a + d_ai`, `b_i = b + d_bi`, with the
# deviations drawn from a bivariate normal distribution with SDs and a correlation, so the model
# estimates cov(a_i, b_i). The average indirect effect is then
#
#     E[a_i b_i] = a b + cov(a_i, b_i)
#
# (Kenny, Korchmaros & Bolger 2003; Bauer, Preacher & Gil 2006). If patients whose alliance moves
# their processing most are also those whose processing moves their symptoms most, the product
# of the average paths misses part of the indirect effect; with the opposite pattern it
# overstates it.
#
# The post-treatment score `post_symptoms` (one value per patient) is regressed on the patient's
# trait-like alliance and on the patient's state-like change in alliance (a random linear slope
# of alliance over sessions, `s_i`):
#
#     post_i = g_0 + g_T (trait alliance_i - mean) + g_S (s_i - mean slope) + error_i
#
# The roles of the columns are in `datasets.MEDIATION_WITHIN_ROLES`.

# %%
print(datasets.MEDIATION_WITHIN_ROLES)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    data = SeriesData.from_frame(df, **datasets.MEDIATION_WITHIN_ROLES)
for w in caught:
    print("warning:", w.message)
print(f"{data.n_patients} patients, up to {data.n_sessions} sessions, series {data.columns}")

# %% [markdown]
# ## Fit
#
# `fit_mechanisms` samples the model with nutpie; the random a and b paths are the default with
# a mediator. The question here is within patients, so the model has two levels: with 20
# therapists a third level's covariance matrix of three latent means is barely informed and
# slows the sampler down (its SDs mixed poorly at 2 x 1000 draws), while the therapists' mean
# differences are absorbed by the patients' latent means and leave the within-patient paths
# unchanged. With many more therapists, `MechanismSpec(therapist_level=True)` adds the level.
# The sampler settings come from the tutorial profile (`_profile.py`: short chains for the
# documentation build, otherwise 4 chains of twice the profile's 1000 draws after 1000 tuning
# steps: the SD of the patients' alliance slopes, which the end-of-treatment part needs, is
# informed by 12 sessions per patient only and mixes slowest; at 1000 draws its R-hat was 1.015).

# %%
spec = MechanismSpec(therapist_level=False)
result = fit_mechanisms(
    data, spec, draws=2 * DRAWS, tune=TUNE, chains=4, random_seed=6, progressbar=False
)
result  # noqa: B018  (a notebook shows the short summary)

# %% [markdown]
# ## The effects
#
# `result.effects()` summarises every derived effect per posterior draw: mean, SD and the 94%
# highest-density interval (HDI), as the main model's tables do.

# %%
effects = result.effects()
cols = ["mean", "sd", "ci_low", "ci_high"]
effects[cols].round(3)

# %% [markdown]
# The mediation paths in one small table, then on the path diagram that the report of a
# mechanism fit (`bayes-alliance fit --mediator ...`) also draws.

# %%
paths = {
    "a: alliance_t -> processing_t+1": "effect_on_mediator",
    "b: processing_t -> symptoms_t+1": "mediator_effect",
    "c': alliance_t -> symptoms_t+1": "direct_path_within",
    "SD of a between patients": "sd_effect_on_mediator_patient",
    "SD of b between patients": "sd_mediator_effect_patient",
    "cov(a_i, b_i)": "cov_random_paths",
}
table = effects.loc[list(paths.values()), cols]
table.set_axis(list(paths)).round(3)

# %%
from bayes_alliance.report.mechanisms import diagram, mechanism_effects_table  # noqa: E402

fig = diagram(result, mechanism_effects_table(result), 0.94)

# %% [markdown]
# ## Why E[a_i b_i] is not a x b
#
# `indirect_effect_within_fixed` is the product of the average paths, `a b`;
# `indirect_effect_within` adds the covariance of the patients' paths. In these data the a and b
# deviations were drawn with correlation .7: patients whose alliance raises their processing
# more also have a *less negative* b path, so for the average patient the indirect effect is
# weaker than `a b` says. The difference is exactly `cov_random_paths`, and its posterior can be
# read from the draws.

# %%
draws = result.effect_draws()
diff = draws["indirect_effect_within"] - draws["indirect_effect_within_fixed"]
rows = ["indirect_effect_within_fixed", "indirect_effect_within", "cov_random_paths"]
compare = effects.loc[rows, cols].round(3)
compare["truth"] = [truth[r] for r in rows]
print(compare.to_string())
print(f"P(E[a_i b_i] > a b | data) = {np.mean(diff > 0):.2f}")
print(
    "sample mean of a_i b_i over the 120 simulated patients:",
    round(record["sample"]["indirect_effect_within"], 3),
)

# %% [markdown]
# The covariance of the random paths is the least certain part of the indirect effect: it rests
# on how the patients' own a and b paths co-vary, and each patient contributes only 11 session
# transitions. Its interval is wide relative to its size, so report `indirect_effect_within`
# (which carries that uncertainty) rather than `a b` with the covariance silently set to zero.
#
# The indirect path acts over two sessions (alliance at t, processing at t+1, symptoms at t+2),
# so the total, direct and indirect effects are all of alliance at t on symptoms at t+2:
# `total_effect_within` (every route, averaged over patients), `indirect_effect_within` (the
# route through processing) and `direct_effect_within` (the rest: c' carried over by alliance's
# and symptoms' own persistence); `proportion_mediated_within` = indirect / total. The lag-1
# path c' itself is `direct_path_within`.

# %% [markdown]
# ## End of treatment: trait-like alliance and state-like change
#
# Does a patient's usual alliance level predict the post-treatment score, and does the change
# of alliance over treatment add to it? `end_trait_effect_patient` is per point of a patient's
# trait alliance (above its therapist's mean in a three-level fit, which adds
# `end_trait_effect_therapist` per point of the therapist's mean and a therapist intercept of
# the outcome, so the levels are not mixed; this fit is two-level),
# `end_change_effect` per point of alliance slope per session; the `_per_sd` versions are per
# SD of each at its own level (comparable with each other).

# %%
rows = [
    "end_trait_effect_patient",
    "end_trait_effect_patient_per_sd",
    "end_change_effect",
    "end_change_effect_per_sd",
]
effects.loc[rows, cols].assign(truth=[truth[r] for r in rows]).round(3)

# %% [markdown]
# How well do 12 sessions pin down each patient's slope? `change_reliability` is the share of
# the spread of the estimated slopes that is true spread between patients. Below about .5 the
# effect per unit of slope is weakly identified (wide, and skewed away from zero: its mean
# overstates it; docs/calibration.md), and the effect per SD is the one to read.

# %%
effects.loc[["change_reliability"], cols].round(3)

# %% [markdown]
# ## Estimates against the simulated truth
#
# The record beside the data holds the generating values and the effects they imply
# (`datasets.mediation_within_record()["effects"]`), named as in `result.effects()`.
# Therapist-level rows are left out (this fit has two levels). The data were drawn with small
# therapist differences (SD 0.3 against 1 for patients); in the two-level fit they are part of
# the patients' latent means, so the trait-level rows estimate the regression over patients and
# therapists together, within about 8% of the patient-level truth shown. The within-patient
# paths are not affected.

# %%
shown = [k for k in truth if k in effects.index and "therapist" not in k]
check = effects.loc[shown, ["mean", "ci_low", "ci_high"]].copy()
check.insert(0, "truth", [truth[k] for k in shown])
check["inside"] = (check["ci_low"] <= check["truth"]) & (check["truth"] <= check["ci_high"])
print(check.round(3).to_string())
print(f"{int(check['inside'].sum())} of {len(check)} true values inside their 94% interval")

# %% [markdown]
# ## Convergence
#
# Every fit carries the convergence check (R-hat, bulk and tail ESS, divergences, E-BFMI) over
# the model's parameters. The short chains of the documentation build are not meant to pass
# it; the reader's profile (4 chains of 2000 draws after 1000 tuning steps) passes it (max
# R-hat at most 1.01, bulk and tail ESS at least 100 per chain; about 75 s on 2 cores).

# %%
conv = result.convergence
print(conv.message())
print(
    pd.Series(
        {
            "max R-hat": conv.max_r_hat,
            "min ESS bulk": conv.min_ess_bulk,
            "min ESS tail": conv.min_ess_tail,
            "divergences": conv.divergences,
            "sampling seconds": result.provenance["timing"]["sample_s"],
        }
    ).round(3)
)
