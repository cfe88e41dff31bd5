"""How a fit was made and what the report cites: sampler settings, library versions, a methods
paragraph for a manuscript with short citations, and the full references.

The methods paragraph follows the options of the fitted :class:`~bayes_alliance.spec.model_spec.ModelSpec`
as the equations of :mod:`bayes_alliance.report.model_text` do; the mediation references are cited
only when the model has a baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import CI_KIND
from bayes_alliance.report import continuous as ct_report
from bayes_alliance.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    from bayes_alliance.core.diagnostics import Convergence
    from bayes_alliance.data.session_data import SessionData

v = vocab

# Full references, keyed by the short citation the methods paragraph uses; the mediation ones
# are cited only when the model has a baseline (between-level mediation).
MEDIATION_REFERENCES = {
    "MacKinnon 2008": (
        "MacKinnon, D. P. (2008). Introduction to statistical mediation analysis. Erlbaum."
    ),
    "Preacher, Zyphur & Zhang 2010": (
        "Preacher, K. J., Zyphur, M. J., & Zhang, Z. (2010). A general multilevel SEM framework "
        "for assessing multilevel mediation. Psychological Methods, 15(3), 209-233."
    ),
}
# Cited only when the model has measurement error.
MEASUREMENT_REFERENCES = {
    "Schuurman & Hamaker 2019": (
        "Schuurman, N. K., & Hamaker, E. L. (2019). Measurement error and person-specific "
        "reliability in multilevel autoregressive modeling. Psychological Methods, 24(1), 70-91."
    ),
}
REFERENCES = {
    "Zilcha-Mano & Fisher 2022": (
        "Zilcha-Mano, S., & Fisher, H. (2022). Distinct roles of state-like and trait-like "
        "patient-therapist alliance in psychotherapy. Nature Reviews Psychology, 1(4), 194-210."
    ),
    "Asparouhov, Hamaker & Muthén 2018": (
        "Asparouhov, T., Hamaker, E. L., & Muthén, B. (2018). Dynamic structural equation "
        "models. Structural Equation Modeling, 25(3), 359-388."
    ),
    "Hamaker, Asparouhov & Muthén 2023": (
        "Hamaker, E. L., Asparouhov, T., & Muthén, B. (2023). Dynamic structural equation "
        "modeling as a combination of time series modeling, multilevel modeling, and "
        "structural equation modeling. In R. H. Hoyle (Ed.), Handbook of structural equation "
        "modeling (2nd ed.). Guilford Press."
    ),
    "Lüdtke et al. 2008": (
        "Lüdtke, O., Marsh, H. W., Robitzsch, A., Trautwein, U., Asparouhov, T., & Muthén, B. "
        "(2008). The multilevel latent covariate model: A new, more reliable approach to "
        "group-level effects in contextual studies. Psychological Methods, 13(3), 203-229."
    ),
    "Hamaker, Kuiper & Grasman 2015": (
        "Hamaker, E. L., Kuiper, R. M., & Grasman, R. P. P. P. (2015). A critique of the "
        "cross-lagged panel model. Psychological Methods, 20(1), 102-116."
    ),
    "Schuurman et al. 2016": (
        "Schuurman, N. K., Ferrer, E., de Boer-Sonnenschein, M., & Hamaker, E. L. (2016). How "
        "to compare cross-lagged associations in a multilevel autoregressive model. "
        "Psychological Methods, 21(2), 206-221."
    ),
    "Rights & Sterba 2019": (
        "Rights, J. D., & Sterba, S. K. (2019). Quantifying explained variance in multilevel "
        "models: An integrative framework for defining R-squared measures. Psychological "
        "Methods, 24(3), 309-338."
    ),
    "Rights & Sterba 2023": (
        "Rights, J. D., & Sterba, S. K. (2023). R-squared measures for multilevel models with "
        "three or more levels. Multivariate Behavioral Research, 58(2), 340-367."
    ),
    "Gelman et al. 2019": (
        "Gelman, A., Goodrich, B., Gabry, J., & Vehtari, A. (2019). R-squared for Bayesian "
        "regression models. The American Statistician, 73(3), 307-309."
    ),
    "Vehtari, Gelman & Gabry 2017": (
        "Vehtari, A., Gelman, A., & Gabry, J. (2017). Practical Bayesian model evaluation "
        "using leave-one-out cross-validation and WAIC. Statistics and Computing, 27(5), "
        "1413-1432."
    ),
    "Vehtari et al. 2021": (
        "Vehtari, A., Gelman, A., Simpson, D., Carpenter, B., & Bürkner, P.-C. (2021). "
        "Rank-normalization, folding, and localization: An improved R-hat for assessing "
        "convergence of MCMC. Bayesian Analysis, 16(2), 667-718."
    ),
}


def sampler_table(provenance: Mapping[str, Any], spec: ModelSpec | None = None) -> pd.DataFrame:
    """Sampler settings of the fit, from its provenance; with the joint model's ``spec`` how
    its latent means and missing cells were handled (a mechanism model, ``spec`` None, samples
    both with the other parameters)."""
    timing = provenance.get("timing", {}) or {}
    chains, draws = provenance.get("chains"), provenance.get("draws")
    sampler = str(provenance.get("sampler", ""))
    rows = [
        ("sampler", f"{sampler} (No-U-Turn Sampler)" if sampler else "not recorded"),
        ("chains", chains),
        ("tuning steps per chain (discarded)", provenance.get("tune")),
        ("draws per chain (kept)", draws),
        ("draws in all", chains * draws if chains and draws else None),
        ("random seed", provenance.get("random_seed")),
    ]
    if spec is None:
        rows += [
            ("latent means (traits)", "sampled with the other parameters"),
            ("missing cells inside a series", "sampled with the other parameters (flat prior)"),
        ]
    else:
        rows += [
            (
                "latent means (traits)",
                "integrated out in closed form, drawn after sampling"
                if spec.traits == "integrated"
                else "sampled with the other parameters",
            ),
            ("missing cells drawn after sampling", bool(provenance.get("impute_missing", False))),
        ]
    for key, what in (("compile_s", "compilation"), ("sample_s", "sampling")):
        if key in timing:
            rows.append((f"{what} time (s)", f"{float(timing[key]):.1f}"))
    return pd.DataFrame(
        [(k, "" if val is None else str(val)) for k, val in rows], columns=["setting", "value"]
    ).set_index("setting")


def versions_table(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """Library versions the fit was made with, and those that wrote the report."""
    fitted = dict(provenance.get("versions", {}) or {})
    now = {}
    for lib in ("bayes_alliance", "matplotlib", "numpy", "pandas"):
        try:
            now[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            now[lib] = "not installed"
    libs = list(dict.fromkeys([*fitted, *now]))
    return pd.DataFrame(
        {"fit": [fitted.get(k, "") for k in libs], "report": [now.get(k, "") for k in libs]},
        index=pd.Index(libs, name="library"),
    )


def methods_paragraph(
    spec: ModelSpec,
    data: SessionData,
    provenance: Mapping[str, Any],
    convergence: Convergence,
    ci_prob: float,
) -> str:
    """A methods paragraph for a manuscript, with short citations (see :func:`references`)."""
    x, y = data.roles.predictor, data.roles.outcome
    parts = [
        _model_sentence(spec, x, y),
        _dynamics_sentence(spec, x, y),
        ct_report.methods_sentence(spec, x, y),
        _options_sentence(spec, x, y),
        _trait_effect_sentence(spec, x, y),
        _measurement_sentence(spec, x, y),
        sampling_sentence(provenance, convergence),
        _reporting_sentence(ci_prob),
    ]
    return " ".join(p for p in parts if p)


def _model_sentence(spec: ModelSpec, x: str, y: str) -> str:
    """The model in one sentence: trait/state split, levels, latent centring, DSEM."""
    levels = (
        "sessions nested in patients nested in therapists"
        if spec.therapist_level
        else "sessions nested in patients"
    )
    return (
        f"We separated the trait-like and state-like components of {x} and {y} "
        "(Zilcha-Mano & Fisher 2022) in a Bayesian multilevel model of "
        f"{levels}. Each patient's trait-like level of each variable is a latent mean "
        "(latent centring; Lüdtke et al. 2008), estimated jointly with the within-person "
        "dynamics, as in dynamic structural equation modelling (Asparouhov, Hamaker & Muthén "
        "2018; Hamaker, Asparouhov & Muthén 2023)."
    )


def _dynamics_sentence(spec: ModelSpec, x: str, y: str) -> str:
    """The within-person dynamics and their relation to the RI-CLPM (or that there are none)."""
    if spec.dynamics != "var1":
        return "Sessions carry no lagged dynamics (cross-sectional clusters)."
    dyn = (
        "The state-like deviations follow a cross-lagged first-order vector autoregression "
        + ("in continuous time" if spec.time_model == "continuous" else "over session numbers")
        + f", in which {x} at one session predicts {y} at the next "
        "(the state-like effect)"
        if spec.bivariate
        else f"The state-like deviations of {y} are regressed on the previous session's "
        f"state of {x} and of {y} (single-equation model)"
    )
    if spec.bivariate and spec.reverse_lag:
        dyn += f" and {y} predicts the next {x} (the reverse path)"
    return dyn + (
        "; with a free first session and session-specific innovations this is the "
        "random-intercept cross-lagged panel model (Hamaker, Kuiper & Grasman 2015)."
        if spec.innovations == "session"
        else "; it generalises the random-intercept cross-lagged panel model (RI-CLPM; "
        "Hamaker, Kuiper & Grasman 2015) to unequal series, missing sessions"
        + (" and a therapist level." if spec.therapist_level else ".")
    )


def _options_sentence(spec: ModelSpec, x: str, y: str) -> str:
    """The model's further options in one sentence, or "" when it has none."""
    extras = []
    if spec.random_slopes:
        extras.append(
            "the state-like effect varies between "
            + " and ".join(f"{s}s" for s in spec.random_slopes)
        )
    if spec.moderators:
        extras.append(f"it is moderated by {', '.join(spec.moderators)}")
    if spec.same_session != "none":
        extras.append("a same-session path links the two states")
    if spec.trend:
        extras.append("each patient has a linear trend, so states are deviations from it")
    if spec.session_means:
        extras.append("each session has its own grand mean")
    if spec.baseline:
        extras.append(_baseline_clause(spec, x, y))
    return ("In this model " + "; ".join(extras) + ".") if extras else ""


def _baseline_clause(spec: ModelSpec, x: str, y: str) -> str:
    """The between-level mediation by the baseline, at patient or therapist level."""
    if spec.baseline_level == v.THERAPIST:
        return (
            f"the therapist characteristic {', '.join(spec.baseline)} acts on the therapists' "
            f"mean {y} directly and through their mean {x} (between-level mediation at "
            "therapist level; indirect effect = a b_T per draw, b_T the therapist-level "
            "trait-like effect; MacKinnon 2008; Preacher, Zyphur & Zhang 2010)"
        )
    if spec.splits_baseline():
        return (
            f"{', '.join(spec.baseline)} acts on the latent mean of {y} directly and through "
            f"that of {x}, split at the therapists: a patient's difference from their "
            "therapist's patients' mean acts through the patient-level trait-like effect "
            "(indirect effect = a_W b per draw), the therapists' means through the "
            "therapist-level one (a_B b_T per draw), each with its own paths (between-level "
            "mediation; MacKinnon 2008; Preacher, Zyphur & Zhang 2010)"
        )
    return (
        f"{', '.join(spec.baseline)} acts on the latent mean of {y} directly and through "
        f"that of {x} (between-level mediation; indirect effect = a b per draw, MacKinnon "
        "2008; Preacher, Zyphur & Zhang 2010)"
    )


def _trait_effect_sentence(spec: ModelSpec, x: str, y: str) -> str:
    """The trait-like effects and the priors."""
    return (
        f"The patient-level trait-like effect regresses the latent mean of {y} on that of {x}"
        + (", separately at therapist level." if spec.therapist_level else ".")
        + " Priors were weakly informative and scaled to the data (see the table of priors)."
    )


def _measurement_sentence(spec: ModelSpec, x: str, y: str) -> str:
    """Measurement error and the within-person reliability, or "" without measurement error."""
    if not spec.measurement_error:
        return ""
    names = (v.MEASUREMENT_ERROR_SD_PREDICTOR, v.MEASUREMENT_ERROR_SD_OUTCOME)
    prior = (
        ""
        if any(n in spec.priors for n in names)
        else " (the error SDs have half-normal priors with scale half the variable's SD)"
    )
    return (
        f"Each observed score of {x} and {y} is its latent mean plus its state plus normally "
        "distributed measurement error, so that the dynamics are those of the error-free states "
        "(the measurement-error VAR(1) of Schuurman & Hamaker 2019), with the within-person "
        "reliability of each variable reported as the state variance over the state plus "
        "error variance" + prior + "."
    )


def _reporting_sentence(ci_prob: float) -> str:
    """What is reported: intervals, standardisation, R-squared and model comparison."""
    from bayes_alliance.core.intervals import interval_name

    return (
        f"We report posterior means with {interval_name(ci_prob, CI_KIND)}s (highest-density "
        "intervals). Within-person effects were standardised with the model-implied "
        "within-person SDs (Schuurman et al. 2016). Variance explained is split into "
        "components with the R-squared framework of Rights & Sterba (2019; "
        "three levels: Rights & Sterba 2023), computed per posterior draw, with the "
        "whole-model Bayesian R-squared (Gelman et al. 2019). Competing models are compared "
        "by PSIS-LOO (Vehtari, Gelman & Gabry 2017), leaving out one patient at a time."
    )


def sampling_sentence(provenance: Mapping[str, Any], convergence: Convergence) -> str:
    """How the posterior was drawn and checked, for a methods paragraph (cites Vehtari et al.
    2021)."""
    from bayes_alliance.core.diagnostics import BFMI_MIN, ESS_PER_CHAIN_MIN, RHAT_MAX

    chains, draws, tune = provenance.get("chains"), provenance.get("draws"), provenance.get("tune")
    return (
        f"We drew {draws} posterior draws in each of {chains} chains after {tune} tuning steps "
        f"with the No-U-Turn sampler ({provenance.get('sampler')}; seed "
        f"{provenance.get('random_seed')}) and checked convergence by rank-normalised R-hat "
        f"(at most {RHAT_MAX}), bulk and tail effective sample sizes (at least "
        f"{ESS_PER_CHAIN_MIN} per chain; Vehtari et al. 2021), divergent transitions and E-BFMI "
        f"(at least {BFMI_MIN}); "
        + ("all checks passed." if convergence.ok else "the checks FAILED (see Convergence).")
    )


def references(spec: ModelSpec | None = None) -> list[str]:
    """Full references of every citation in the report, alphabetical (with the mediation
    references when ``spec`` has a baseline and the measurement-error one when it has
    measurement error)."""
    extra = dict(MEDIATION_REFERENCES) if spec is not None and spec.baseline else {}
    if spec is not None and spec.measurement_error:
        extra.update(MEASUREMENT_REFERENCES)
    return sorted({*REFERENCES.values(), *extra.values(), *ct_report.references(spec)})
