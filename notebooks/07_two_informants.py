# %% [markdown]
# # Two informants: patient-rated and therapist-rated alliance
#
# Patients and therapists both rate the alliance after each session, and the two ratings agree
# only moderately. Do they carry the same information about symptoms? A pattern reported in the
# alliance literature is that the therapist's rating says little about outcome through its
# trait-like part (therapists who see a patient's alliance as generally good do not have
# patients with fewer symptoms, once the patient's own rating is taken into account), while its
# state-like part does: a session the therapist rates better than usual for this patient is
# followed by fewer symptoms.
#
# Answering this needs both ratings in one model, each split into a trait and a state, and the
# comparison of the two informants' effects with an interval, not two separate significance
# tests. The shipped data `informants.csv` were simulated with that pattern: 120 patients (20
# therapists x 6 patients), 12 sessions, 3% of the ratings missing.

# %%
import warnings

import numpy as np
from _profile import DRAWS, TUNE

from bayes_alliance import datasets
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.fit import fit_mechanisms
from bayes_alliance.mechanisms.spec import MechanismSpec

df = datasets.load_informants()
record = datasets.informants_record()
truth = record["effects"]
df.head()

# %% [markdown]
# ## The model
#
# The patient-rated alliance *x_P*, the therapist-rated alliance *x_T* and symptoms *y* of
# session *t* of patient *i* (therapist *j*) form one vector *z*, each series the patient's trait
# (latent mean) plus the session's state:
#
#     z_ti = mu + u_j + v_i + w_ti,      v_i ~ MVN(0, Sigma_P),  u_j ~ MVN(0, Sigma_T)
#     w_ti = Phi w_(t-1)i + e_ti,        e_ti ~ MVN(0, Sigma_e)
#
# **Trait-like effects** compare patients: the regression of the symptom trait on both
# informants' traits at the patient level, `beta = Sigma_P[x, x]^-1 Sigma_P[x, y]`. Each
# coefficient is a partial effect: the patient-rated trait controlling for the therapist-rated
# one, and vice versa. The same regression at the therapist level uses `Sigma_T`.
#
# **State-like effects** are within patients: `Phi[y, x_P]` and `Phi[y, x_T]`, next-session
# symptoms after a session rated one point above the patient's usual level by the patient or
# by the therapist, each controlling for the other rating's state and for the symptoms' own
# carry-over.
#
# **Differences** are patient-rated minus therapist-rated, computed per posterior draw, so
# their intervals account for the correlation of the two estimates. Raw differences depend on
# the two rating scales; the `_std` versions compare the effects per SD of each informant's own
# part (trait SDs for trait effects, the stationary state SDs of the dynamics for state
# effects), in SDs of the symptoms' part.

# %%
print(datasets.INFORMANTS_ROLES)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    data = SeriesData.from_frame(df, **datasets.INFORMANTS_ROLES)
for w in caught:
    print("warning:", w.message)
print(f"{data.n_patients} patients, up to {data.n_sessions} sessions, series {data.columns}")
print("correlation of the two ratings (all sessions):")
print(df[["alliance", "alliance_therapist"]].corr().round(2).to_string())

# %% [markdown]
# ## Fit
#
# Three levels (`MechanismSpec(therapist_level=True)`, the default when the data name the
# therapists): each series' latent mean has a therapist part and a patient part, so the
# patient-level trait effects compare patients of the same therapist and the same regression
# is estimated between therapists. The latent means and the missing ratings are integrated out
# in closed form (a Kalman filter over the three series); the sampler sees only the population
# parameters. The sampler settings are the command line's defaults, 2 chains of 1000 draws after
# 1000 tuning steps (the tutorial profile, `_profile.py`; the documentation build runs short
# chains that are not meant to converge).

# %%
spec = MechanismSpec(therapist_level=True)
result = fit_mechanisms(
    data, spec, draws=DRAWS, tune=TUNE, chains=2, random_seed=7, progressbar=False
)
result  # noqa: B018  (a notebook shows the short summary)

# %% [markdown]
# ## Trait-like and state-like effects of each informant
#
# Rows without a suffix are the patient-rated alliance, `_second` the therapist-rated one. The
# path diagram below is the one the report of a mechanism fit draws
# (`bayes-alliance fit --second-predictor ...`).

# %%
effects = result.effects()
cols = ["mean", "sd", "ci_low", "ci_high"]
rows = {
    "trait, patient-rated": "trait_effect_patient",
    "trait, therapist-rated": "trait_effect_patient_second",
    "state, patient-rated": "state_effect",
    "state, therapist-rated": "state_effect_second",
    "trait correlation of the ratings": "trait_corr_informants_patient",
    "state correlation (innovations)": "state_corr_informants",
}
effects.loc[list(rows.values()), cols].set_axis(list(rows)).round(3)

# %%
from bayes_alliance.report.mechanisms import diagram, mechanism_effects_table  # noqa: E402

fig = diagram(result, mechanism_effects_table(result), 0.94)

# %% [markdown]
# ## Do the informants differ?
#
# The question is a comparison, so it is answered by the difference and its interval.

# %%
diff_rows = [
    "trait_effect_patient_difference",
    "trait_effect_patient_difference_std",
    "state_effect_difference",
    "state_effect_difference_std",
]
draws = result.effect_draws()
table = effects.loc[diff_rows, cols].assign(truth=[truth[r] for r in diff_rows])
table["P(difference < 0)"] = [np.mean(draws[r] < 0) for r in diff_rows]
table.round(3)

# %% [markdown]
# Read it as a researcher would report it: patients who see the alliance as generally better
# have fewer symptoms, but the therapist's general view of the alliance adds nothing beyond the
# patient's (trait difference clearly below zero, its interval away from 0). Session to session,
# both informants' ratings are followed by symptom change of a similar size: the state
# difference is small and its interval includes zero, so these data do not show that one
# informant's session ratings matter more than the other's.
#
# The standardised effects give the same picture on a common metric:

# %%
std_rows = [
    "trait_effect_patient_std",
    "trait_effect_patient_second_std",
    "state_effect_std",
    "state_effect_second_std",
]
effects.loc[std_rows, cols].assign(truth=[truth[r] for r in std_rows]).round(3)

# %% [markdown]
# ## Therapist level
#
# The same regression at the therapist level, from the therapists' covariance `Sigma_T`:
# `trait_effect_therapist` and `trait_effect_therapist_second` (do therapists whose patients
# rate the alliance higher, or who rate it higher themselves, have patients with fewer
# symptoms?) and `trait_corr_informants_therapist`, how far the two informants agree about
# which therapists have good alliances. The therapist SDs have the joint model's priors (Gamma(2)
# with mean half the series' SD, so an SD is not pushed to 0; LKJ(1) correlations).

# %%
rows = [
    "trait_effect_therapist",
    "trait_effect_therapist_second",
    "trait_effect_therapist_difference",
    "trait_corr_informants_therapist",
]
summary = result.summary()
sds = [r for r in summary.index if r.startswith("sd_therapist[")]
print(summary.loc[sds, cols].round(3).to_string())
effects.loc[rows, cols].assign(truth=[truth[r] for r in rows]).round(3)

# %% [markdown]
# The data were drawn with therapist SDs of 0.3 (against 1 between patients; estimated 0.32,
# 0.43 and 0.25, with intervals from about 0.05-0.1 up to 0.45-0.72) and independent therapist
# parts, so every therapist-level effect is truly 0. With 20 therapists these coefficients are
# ratios of small, uncertain covariances and their intervals are very wide (patient-rated
# alliance: -1.28 to 1.58): they say that these data cannot tell, not that the effects are 0.
# Report them only with many more therapists. The patient-level rows above are now within
# therapists, and all 27 true values lie inside their intervals (below).

# %% [markdown]
# ## Estimates against the simulated truth
#
# `datasets.informants_record()["effects"]` holds the effects implied by the generating values,
# named as in `result.effects()`.

# %%
shown = [k for k in truth if k in effects.index]
check = effects.loc[shown, ["mean", "ci_low", "ci_high"]].copy()
check.insert(0, "truth", [truth[k] for k in shown])
check["inside"] = (check["ci_low"] <= check["truth"]) & (check["truth"] <= check["ci_high"])
print(check.round(3).to_string())
print(f"{int(check['inside'].sum())} of {len(check)} true values inside their 94% interval")

# %% [markdown]
# ## Leave-one-patient-out and the posterior predictive check
#
# `bayes_alliance.analysis.comparison.loo` gives each patient's expected log predictive
# density when the patient is left out (PSIS-LOO, the patient's latent means integrated out,
# given its therapist's drawn part). Its use is to compare fits of the same data, e.g. this one
# against one whose state effects vary between patients (`--random-lags
# state_effect,state_effect_second`; tutorial 06 compares two fits); the Pareto k values say
# whether the approximation holds. Here one patient of 120 has k > 0.7 (this model has no
# patient-specific paths; compare tutorial 06, where random paths make many patients'
# k high).

# %%
from bayes_alliance.analysis.comparison import loo  # noqa: E402

patient_loo = loo(result)
print(
    f"ELPD {patient_loo.elpd_loo:.1f} (SE {patient_loo.se:.1f}), "
    f"effective parameters {float(patient_loo.elpd.p):.1f}, "
    f"patients with Pareto k > 0.7: {patient_loo.n_high_k} of {data.n_patients}"
)

# %% [markdown]
# `result.posterior_predictive()` replicates every patient's whole series from 200 posterior
# draws, each with latent means drawn from their exact distribution given the data and the
# draw. A series whose observed mean per session leaves the band of the replicated means at
# many sessions points to a missing trend or to dynamics that do not fit. Here 34 of the 36
# session means lie inside their 94% bands (about 2 outside are expected by chance).

# %%
from bayes_alliance.report.mechanism_checks import session_table  # noqa: E402

by_session = session_table(result.posterior_predictive(), data.roles, 0.94)
by_session["inside"] = (by_session["rep_low"] <= by_session["observed"]) & (
    by_session["observed"] <= by_session["rep_high"]
)
by_session.groupby("variable", sort=False)["inside"].agg(["sum", "size"]).rename(
    columns={"sum": "sessions inside the 94% band", "size": "sessions"}
)

# %% [markdown]
# ## A mediator with two informants
#
# Both ratings can also act through a session-level mediator in one model: with
# `--second-predictor` and `--mediator` together (`SeriesData.from_frame(..., second_predictor=
# ..., mediator=...)`) each informant has its own a path to the mediator, both a paths and the b
# path vary between patients, and each informant's within-level indirect effect and their
# difference are reported (docs/methods.md, "Mechanism models").

# %% [markdown]
# ## Convergence
#
# The short chains of the documentation build are not meant to pass the check; the reader's
# profile (2 chains of 1000 draws after 1000 tuning steps) passes it (max R-hat 1.005, bulk and
# tail ESS above 700; sampling took 50 s on 2 CPU cores shared with other work).

# %%
conv = result.convergence
print(conv.message().splitlines()[0])
print(
    f"max R-hat {conv.max_r_hat:.3f}, min ESS bulk {conv.min_ess_bulk:.0f}, tail "
    f"{conv.min_ess_tail:.0f}, divergences {conv.divergences}, "
    f"sampling {result.provenance['timing']['sample_s']:.0f} s"
)
