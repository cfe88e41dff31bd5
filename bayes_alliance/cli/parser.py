"""The argument parser of ``bayes-alliance``: every command's flags and manual.

Column roles, model options and sampler settings are generated from the option tables of
:mod:`bayes_alliance.spec.options`, the same tables spec files are checked against. ``docs/build.py``
turns this parser into the CLI reference.
"""

from __future__ import annotations

import argparse

from bayes_alliance import __version__
from bayes_alliance.core.intervals import DEFAULT_CI_PROB, FEEDBACK_CI_PROB
from bayes_alliance.spec.options import MODEL, ROLES, SAMPLER

# The demo samples longer than a fit's defaults: its report is read as an example of a result.
DEMO_SAMPLER = {"draws": 2000, "tune": 2000}
SAMPLER_FLAGS = ("draws", "tune", "chains", "seed")
EXIT_STATUS = (
    "exit status: 0 on success, 2 on bad input or flags (one message, no traceback), 3 when the "
    "results are written but the convergence check failed (the message says what to change), "
    "130 when interrupted by Ctrl-C (143 by kill): nothing is written then. The output folder "
    "is built beside OUT and renamed into place when complete; a second run aimed at the same "
    "OUT stops with an error while the first is writing."
)
RAW = argparse.RawDescriptionHelpFormatter
DATA_HELP = (
    "data file, one row per patient and session: .csv/.tsv/.txt (delimiter and decimal comma "
    "detected), .parquet, .xlsx, .sav (SPSS) or .dta (Stata)"
)


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < p < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (e.g. 0.95), got {text}")
    return p


def _add_sheet(p: argparse.ArgumentParser, dates: bool = True) -> None:
    p.add_argument(
        "--sheet", help="Excel only: the sheet's name or 0-based position (default: the first)"
    )
    p.add_argument(
        "--missing-code",
        nargs="+",
        action="extend",
        metavar="CODE",
        help="values that mean missing, set to missing before any check: -99 -98 (every column "
        "but the id and session columns) or COLUMN=CODES (symptoms=-99,999: that column only); "
        "give the data file before this flag",
    )
    if not dates:
        return
    p.add_argument(
        "--dates",
        action="store_true",
        help="the session column holds dates: fit reads them as times (continuous time, in "
        "days unless --time-unit weeks; --time-model sessions instead numbers the sessions "
        "1, 2, ... per patient in date order and drops the day gaps)",
    )
    p.add_argument(
        "--date-format",
        help="strftime format of the dates when they are ambiguous (e.g. %%d.%%m.%%Y)",
    )


def _add_roles(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("column roles" + ("" if required else " (not with --spec)"))
    # --outcome is never required: without it the predictor's series is validated or fitted
    # alone (a mechanism model of one series)
    ROLES.add_flags(g, required=required, only=tuple(n for n in ROLES.names if n != "outcome"))
    ROLES.add_flags(g, only=("outcome",))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayes-alliance",
        epilog="Run 'bayes-alliance COMMAND --help' for a command's manual. Data are long tables "
        "(CSV, Parquet, Excel, SPSS, Stata) with one row per patient and session.",
        description="Bayesian trait/state models for session-by-session psychotherapy data.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _validate(sub)
    _describe(sub)
    _simulate(sub)
    _fit(sub)
    _compare(sub)
    _report(sub)
    _feedback(sub)
    _patterns(sub)
    _demo(sub)
    _reshape(sub)
    _spec(sub)
    _study(sub)
    return parser


def _validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "validate",
        help="check a data file and list every problem",
        description="Check a long data file (one row per patient and session) against every data rule "
        "and list all problems at once, each with its column and rows or ids. Without "
        "--outcome the predictor's series is checked alone. Exit 0 when the data pass, 1 when "
        "they do not, 2 on bad flags.",
        epilog="example:\n  bayes-alliance validate sessions.csv --patient pid --therapist tid --session session \\\n      --predictor wai --outcome ors",
        formatter_class=RAW,
    )
    p.add_argument("data", help=DATA_HELP)
    _add_sheet(p)
    _add_roles(p)


def _describe(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "describe",
        help="the descriptives a methods section reports",
        description="Check a data file as validate does, then print the descriptives a methods "
        "section reports: patients, therapists, patients per therapist and sessions per patient "
        "(min, median, max), and per variable the observed cells, missingness, mean, SD and "
        "the shares of variance at the patient and therapist level (ICCs of the observed "
        "scores, from the nested random-effects ANOVA). Markdown on the terminal; --out "
        "writes .md or .csv.",
        epilog="example:\n  bayes-alliance describe sessions.sav --patient pid --therapist tid "
        "--session session \\\n      --predictor wai --outcome oq45 --missing-code -99",
        formatter_class=RAW,
    )
    p.add_argument("data", help=DATA_HELP)
    _add_sheet(p)
    _add_roles(p)
    p.add_argument("--out", help="also write the tables to this file (.md or .csv)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")


def _simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="draw data with known truth",
        description="Draw three-level session data from the model of docs/methods.md (section 'The decomposition') and "
        "write OUT/data.csv, OUT/truth.json and OUT/truth_patients.csv. Settings are the names "
        "of bayes_alliance.sim.settings.TrueParameters and SimulationDesign, e.g. --set state_effect=-0.3 "
        "--set sessions=8,20.",
        epilog="example:\n  bayes-alliance simulate --out sim --seed 1 --set n_therapists=30 --set sessions=8,20 \\\n      --set state_effect=-0.25 --set p_missing_session=0.1",
        formatter_class=RAW,
    )
    p.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a simulation setting")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")


def _fit(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "fit",
        help="fit the joint trait/state model to a data file",
        description="Fit the latent-centred trait/state model (therapist and patient random "
        "intercepts, within-person cross-lagged VAR(1)) to a long table with one row per patient "
        "and session. Writes OUT/summary.csv (parameter, label, mean, sd, ci_low, ci_high, "
        "interval [94% HDI unless --ci], ess_bulk, ess_tail, r_hat), OUT/r2.csv (labelled "
        "R-squared components), OUT/effects.csv (labelled paths, standardised and long-run "
        "effects, ICCs), OUT/fit.nc "
        "(posterior, data and provenance) and OUT/convergence.json, and prints the key effects. "
        "With --spec the spec file sets the columns, model and sampler (the role, model and "
        "sampler flags are then refused) and is copied to OUT/spec.toml. Each table also comes "
        "as Markdown and LaTeX (effects.md/.tex, r2.md/.tex) for manuscripts. Without "
        "--outcome the predictor's series is fitted alone (a mechanism model of one series: "
        "its autoregression, trait and state variances, ICCs; with --random-lags "
        "predictor_autoregression, --measurement-error, --random-innovations patient, "
        "--end-outcome).",
        epilog="examples:\n  bayes-alliance fit sessions.csv --patient pid --therapist tid --session session \\\n      --predictor wai --outcome ors --out results/var --seed 7\n  bayes-alliance fit --spec random_slopes --data sessions.csv --out results/slopes\n\n"
        + EXIT_STATUS,
        formatter_class=RAW,
    )
    p.add_argument("data", nargs="?", help=DATA_HELP + " (or --data)")
    p.add_argument("--data", dest="data_flag", metavar="DATA", help=DATA_HELP)
    _add_sheet(p)
    p.add_argument(
        "--spec",
        help="analysis spec: a shipped name (cross_lagged, random_slopes, riclpm, "
        "single_equation) or a TOML file: columns, model, priors, sampler, seed",
    )
    p.add_argument(
        "--model",
        metavar="MODEL_STRING",
        help='the model as a model string (docs/formulas.md), e.g. "symptoms ~ lag(alliance) + '
        "lag(symptoms) + (1 | therapist/patient); alliance ~ lag(alliance) + lag(symptoms); "
        'session = session": it names the columns and options; flags may add what it leaves '
        'out, never contradict it (not with --spec: write formula = "..." in its [model])',
    )
    _add_roles(p, required=False)
    p.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
    s = p.add_argument_group("sampler (not with --spec)")
    SAMPLER.add_flags(s)
    m = p.add_argument_group(
        "model options (not with --spec; see bayes_alliance.spec.model_spec.ModelSpec)"
    )
    MODEL.add_flags(m)
    p.add_argument(
        "--store",
        default="",
        help="extra groups to write into fit.nc, comma-separated, for readers outside this "
        "package (float32): traits, states, log_likelihood. By default fit.nc holds the sampled "
        "draws only; the rest is recomputed exactly when the result is loaded",
    )
    _add_ci(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar and no progress lines")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")


def _add_ci(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ci",
        type=_probability,
        default=DEFAULT_CI_PROB,
        help=f"interval probability of the tables (default {DEFAULT_CI_PROB}; journals often "
        "print 0.95)",
    )


def _compare(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compare",
        help="compare fitted models (LOO, stacking weights, Delta-R-squared)",
        description="Compare results written by 'bayes-alliance fit' on the same data: PSIS-LOO "
        "ELPD by patient (default; leave-one-patient-out, each patient's marginal density of "
        "their observed cells with the latent mean and missing cells integrated out) or by "
        "session (a one-step-ahead conditional score given each patient's latent mean and past "
        "states, not a leave-one-session-out predictive), ELPD differences with their SE, "
        "stacking weights, Pareto-k counts, and Delta-R-squared of the outcome equation against "
        "the first folder. Prints the table and writes it to --out.",
        epilog="example:\n  bayes-alliance compare results/var results/single --unit patient --out comparison.csv",
        formatter_class=RAW,
    )
    p.add_argument("dirs", nargs="+", help="result folders, each with fit.nc")
    p.add_argument(
        "--unit",
        default="patient",
        choices=["patient", "session"],
        help="patient (leave-one-patient-out, default) or session (one-step-ahead conditional score)",
    )
    p.add_argument("--out", default="comparison.csv", help="CSV to write (default comparison.csv)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")


def _report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="write an HTML / Markdown / CSV report for a fitted result",
        description="Read DIR/fit.nc (written by 'bayes-alliance fit') and write DIR/report/: a "
        "self-contained report.html, report.md with its PNG figures, and CSV tables. The report "
        "describes the data, convergence, the named and derived effects, R-squared by component "
        "(bar chart), a forest plot, per-patient trait/state decompositions, a posterior "
        "predictive check, the classic two-step comparison, and plain-language sentences.",
        epilog="examples:\n  bayes-alliance report results/var --patients P0001,P0002\n"
        "  bayes-alliance report results/var --format docx,pdf --better wellbeing=higher",
        formatter_class=RAW,
    )
    p.add_argument("dir", help="result folder with fit.nc")
    p.add_argument(
        "--patients",
        default="",
        help="comma-separated patient ids to plot (default: 4 with most sessions)",
    )
    p.add_argument(
        "--ci",
        type=_probability,
        default=None,
        help="interval probability (default: the level the fit was written with, else "
        f"{DEFAULT_CI_PROB})",
    )
    p.add_argument("--out", help="output folder (default DIR/report)")
    p.add_argument("--force", action="store_true", help="replace an existing report folder")
    p.add_argument(
        "--format",
        default="html",
        help="comma-separated formats: html (always written, with report.md), docx (a Word "
        "document, report.docx), pdf (report.pdf, printed by a headless Chromium: apt-get "
        "install chromium); e.g. --format docx,pdf",
    )
    p.add_argument(
        "--better",
        action="append",
        default=[],
        metavar="COLUMN=higher|lower",
        help="which scores are better, for the colours of the patient panels (repeatable; "
        "default: a higher predictor and a lower outcome, as alliance and symptoms)",
    )


def _feedback(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "feedback",
        help="feedback for one patient from a fitted result, with new sessions, no refit",
        description="Read DIR/fit.nc and write OUT/feedback.html and OUT/feedback.json for one "
        "patient at their latest session: the trait-like alliance as a percentile among all "
        "patients and the therapist's caseload, the current state deviation and its recent "
        "trend, and two flags with their posterior probabilities (low trait + strengthening "
        "state: a possible corrective experience; high trait + weakening state: a possible "
        "rupture; Zilcha-Mano & Fisher 2022). New sessions (a long table in the fit's column "
        "names) update the patient's trait and states per posterior draw, exactly given the "
        "parameters, in well under a second: the model is not refitted. A new patient needs "
        "their rows with a therapist of the fit. --profiles adds therapist profiles "
        "(OUT/profiles.csv and a caterpillar plot); see docs/feedback.md.",
        epilog="examples:\n  bayes-alliance feedback results/var --patient P0002 --new-sessions new.csv "
        "--out fb_P0002\n  bayes-alliance feedback results/slopes --profiles --out profiles",
        formatter_class=RAW,
    )
    p.add_argument("dir", help="result folder with fit.nc")
    p.add_argument("--patient", help="the patient's id (required unless --profiles)")
    p.add_argument(
        "--new-sessions",
        help="data file with the patient's new sessions (same columns as the fitted data)",
    )
    _add_sheet(p, dates=False)
    p.add_argument("--profiles", action="store_true", help="add the therapist profiles")
    p.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="write feedback from a fit whose convergence check failed (refused otherwise); "
        "the page then says so",
    )
    p.add_argument(
        "--seed",
        type=int,
        help="seed of the conditioning's draws (default: the fit's; recorded in feedback.json)",
    )
    p.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
    p.add_argument(
        "--alliance",
        choices=["predictor", "outcome"],
        default="predictor",
        help="which variable of the fit is the alliance (default predictor)",
    )
    p.add_argument(
        "--ci",
        type=_probability,
        default=FEEDBACK_CI_PROB,
        help=f"interval probability (default {FEEDBACK_CI_PROB})",
    )
    p.add_argument(
        "--last", type=int, default=4, help="latest sessions whose states give the trend (4)"
    )
    p.add_argument(
        "--low-trait", type=float, default=25.0, help="low trait: below this percentile (25)"
    )
    p.add_argument(
        "--high-trait", type=float, default=75.0, help="high trait: above this percentile (75)"
    )
    p.add_argument(
        "--calibration",
        choices=["null", "fixed"],
        default="null",
        help="strengthening / weakening over the last sessions: a change beyond the 1 - alpha "
        "quantile of the change under the fitted model's null (null, the default), or beyond "
        "--min-trend innovation SDs (fixed)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="with --calibration null, the trend's false-positive rate per draw (0.05)",
    )
    p.add_argument(
        "--min-trend",
        type=float,
        default=1.0,
        help="with --calibration fixed: a rise / fall over the last sessions beyond this many "
        "innovation SDs (the usual session-to-session fluctuation; 1)",
    )
    p.add_argument(
        "--flag-probability",
        type=_probability,
        default=0.75,
        help="raise a flag at this posterior probability of its pattern (0.75)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output folder")


def _patterns(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "patterns",
        help="each patient's posterior probability of each state pattern (patterns.csv)",
        description="Read FITDIR/fit.nc (a joint-model fit written by 'bayes-alliance fit') and "
        "write OUT/patterns.csv, one row per patient with the columns patient, strengthening, "
        "weakening, u_shape, rupture_repair, sudden_gain: the posterior probability (share of "
        "draws) that the patient's states show the pattern. States are the deviations of each "
        "session from the patient's latent mean; by default those of the predictor (the "
        "alliance), with --variable outcome those of the outcome. Each rule has a statistic: "
        "strengthening / weakening, the fitted linear change over the observed sessions; "
        "u_shape, the depth of a quadratic's minimum in the middle of the series; "
        "rupture_repair, the depth of a one- or two-session dip below the sessions around it; "
        "sudden_gain, a rise that is large against the three sessions before and after and is "
        "not reversed (Tang & DeRubeis 1999). By default (--calibration null) a pattern holds in "
        "a draw when its statistic exceeds the 1 - alpha quantile of the statistic under the "
        "fitted model's own null (the draw's stationary dynamics at the patient's observed "
        "sessions), so a patient without the pattern reaches it in a share alpha of draws on "
        "average. With --calibration fixed the old rules apply, in units of the "
        "session-to-session fluctuation SD (see --scale): a change of at least +2 / at most -2; "
        "a dip of at least 1.5; a fall of at least 3, back to within 1 after one or two "
        "sessions; a rise of at least 2.5. The whole-series patterns need 5 observed sessions; "
        "the patterns are not exclusive. See docs/patterns.md; in Python, "
        "bayes_alliance.analysis.pattern_table.patterns_table gives the sessions too.",
        epilog="examples:\n  bayes-alliance patterns results/var --out results/var_patterns\n"
        "  bayes-alliance patterns results/var --variable outcome --lower-is-better --out symptoms",
        formatter_class=RAW,
    )
    p.add_argument("dir", metavar="FITDIR", help="result folder with fit.nc (the joint model)")
    p.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
    p.add_argument(
        "--variable",
        choices=["predictor", "outcome"],
        default="predictor",
        help="whose states: predictor (default; the alliance) or outcome",
    )
    p.add_argument(
        "--lower-is-better",
        action="store_true",
        help="lower scores are better (e.g. symptoms): the states are negated, so that "
        "strengthening and a sudden gain are improvements",
    )
    p.add_argument(
        "--scale",
        choices=["model", "patient"],
        default="model",
        help="with --calibration fixed, the unit of the rules: model (default; the innovation "
        "SD in each draw) or patient (each series' own robust fluctuation SD)",
    )
    p.add_argument(
        "--calibration",
        choices=["null", "fixed"],
        default="null",
        help="thresholds from the fitted model's null (default) or the fixed rules",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="with --calibration null, the share of draws in which a pattern-free patient "
        "shows a pattern (default 0.05)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output folder")


def _demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="analyse the shipped example data and write a report",
        description="Analyse the shipped example data (317 patients of 40 therapists) with the joint "
        "latent-centred model; write OUT/summary.csv, r2.csv, effects.csv, classic.csv, fit.nc and "
        "the report OUT/report/report.html, and print the trait and state effects.",
        epilog="example:\n  bayes-alliance demo --out demo_output --force\n\n" + EXIT_STATUS,
        formatter_class=RAW,
    )
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    _add_ci(p)
    SAMPLER.add_flags(p, only=SAMPLER_FLAGS, defaults=DEMO_SAMPLER)
    p.add_argument("--quiet", action="store_true", help="no progress bar and no progress lines")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")


def _reshape(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "reshape",
        help="turn a wide table (a column per session) into the long table",
        description="Reshape a wide table, one row per patient with a column per session and "
        "variable (wai_1, wai_2, ..., oq_1, oq_2, ...), into the long table the other commands "
        "read: one row per patient and session. Each --pattern NAME=PATTERN names an output "
        "column and the input columns it collects, with {session} where the session number "
        "stands. Sessions with no values are left out.",
        epilog="example:\n  bayes-alliance reshape wide.csv --id patient therapist \\\n"
        "      --pattern alliance=wai_{session} symptoms=oq_{session} --out long.csv",
        formatter_class=RAW,
    )
    p.add_argument("data", help=DATA_HELP.replace("one row per patient and session", "wide"))
    _add_sheet(p, dates=False)
    p.add_argument(
        "--id",
        nargs="+",
        action="extend",
        required=True,
        metavar="COLUMN",
        help="columns that identify the patient (and therapist, patient-level covariates)",
    )
    p.add_argument(
        "--pattern",
        nargs="+",
        action="extend",
        required=True,
        metavar="NAME=PATTERN",
        help="output column and the input column pattern, e.g. alliance=wai_{session}",
    )
    p.add_argument("--session", default="session", help="name of the session column (default)")
    p.add_argument("--out", required=True, help="the long table to write (.csv)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")


def _spec(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "spec",
        help="list the shipped analysis specs, print one, or copy it to edit",
        description="Without NAME: list the analysis specs shipped with the package. With NAME: "
        "print that spec (TOML), or with --out write a copy to edit, e.g. to name your own "
        "columns under [data] before `fit --spec FILE`.",
        epilog="example:\n  bayes-alliance spec cross_lagged --out my_analysis.toml",
        formatter_class=RAW,
    )
    p.add_argument("name", nargs="?", help="a shipped spec's name (or a spec file)")
    p.add_argument("--out", help="write the spec to this file instead of printing it")
    p.add_argument("--force", action="store_true", help="replace an existing file")


def _study(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "study",
        help="run a simulation or method-comparison study on Dask (resumable)",
        description="Run the study described by a study file (a grid of simulator settings x "
        "replications x methods) on a Dask cluster: a local one (one process per core) or an "
        "existing one (--scheduler). Each finished task is written to OUT/results at once, so "
        "running the same command again after a stop resumes where it stopped; at the end "
        "OUT/summary.csv (bias, RMSE, coverage, interval width, power, convergence, time per "
        "fit) and the report OUT/report/index.html are written.",
        epilog="examples:\n  bayes-alliance study centring --out centring_study --replications 20\n"
        "  bayes-alliance study my_study.toml --out s --scheduler tcp://10.0.0.5:8786\n\n"
        + EXIT_STATUS,
        formatter_class=RAW,
    )
    p.add_argument(
        "study",
        help="study file (TOML), or a shipped study's name (centring, power, measurement_error, mechanism_recovery)",
    )
    p.add_argument("--out", required=True, help="study folder (created, or resumed)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port)")
    p.add_argument(
        "--workers", type=int, help="worker processes of the local cluster (default: cores)"
    )
    p.add_argument(
        "--replications",
        type=int,
        help="replications per condition instead of the file's (a quick look; a larger count "
        "later extends the same folder)",
    )
    p.add_argument(
        "--summary-only",
        action="store_true",
        help="write the summary and report from the tasks done so far; run nothing",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no progress lines")
