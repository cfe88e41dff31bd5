# %% [markdown]
# # R-squared per component and model comparison
#
# How much of the symptom variance do state effects (f1), patient traits (f2) and therapist
# traits (f3) explain, and does the bivariate cross-lagged model predict better than the
# single-equation model?

# %%
import warnings

from _profile import DRAWS, TUNE

from bayes_alliance import SessionData, simulate
from bayes_alliance.analysis import comparison
from bayes_alliance.inference.fit import fit
from bayes_alliance.spec.model_spec import ModelSpec

df, truth = simulate(seed=44, n_therapists=20, patients_per_therapist=6, sessions=10)
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
    bivariate = fit(data, ModelSpec(), draws=DRAWS, tune=TUNE, random_seed=4, progressbar=False)
    single = fit(
        data,
        ModelSpec(equations="outcome"),
        draws=DRAWS,
        tune=TUNE,
        random_seed=5,
        progressbar=False,
    )

# %%
r2 = bivariate.r2()
r2[(r2.equation == "outcome") & (r2.denominator.isin(["total", "level1"]))].round(3)

# %% [markdown]
# The simulator knows the population values of the same components:

# %%
print({k: round(v, 4) for k, v in truth.r2_components["outcome"].items()})

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    table = comparison.compare({"bivariate": bivariate, "single": single})
table.round(3)
