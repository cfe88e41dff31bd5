#!/usr/bin/env Rscript
# External reference for between-level mediation: lavaan's two-level SEM (ML) on the shipped
# data set bayes_alliance/datasets/mediation_between.csv (200 patients x 10 sessions).
#
# Within patients the sessions are independent with a free covariance of alliance (x) and
# symptoms (y): the data were drawn without within-person dynamics, so this is the true model.
# Between patients the latent means follow the mediation model of the package's `baseline`
# option: a: baseline -> mean of x, b: mean of x -> mean of y, cp: baseline -> mean of y.
#
# Run from the repository root (Debian: apt-get install r-base-core r-cran-lavaan r-cran-jsonlite):
#   Rscript benchmarks/lavaan_mediation.R
# Writes tests/reference/lavaan_mediation_between.json, read by tests/test_mediation_lavaan.py.

suppressPackageStartupMessages({
  library(lavaan)
  library(jsonlite)
})

data_file <- "bayes_alliance/datasets/mediation_between.csv"
out_file <- "tests/reference/lavaan_mediation_between.json"

d <- read.csv(data_file)
names(d)[names(d) == "alliance"] <- "x"
names(d)[names(d) == "symptoms"] <- "y"
names(d)[names(d) == "baseline"] <- "z"
stopifnot(all(tapply(d$z, d$patient, function(v) length(unique(v))) == 1))

model <- "
level: 1
  x ~~ x
  y ~~ y
  x ~~ y
level: 2
  x ~ a*z
  y ~ b*x + cp*z
  x ~~ vx*x
  y ~~ vy*y
  ab := a*b
  total := cp + a*b
"

fit <- sem(model, data = d, cluster = "patient", estimator = "ML")
stopifnot(lavInspect(fit, "converged"))

pe <- parameterEstimates(fit)
row <- function(lhs, op, rhs, level = NULL) {
  hit <- pe$lhs == lhs & pe$op == op & pe$rhs == rhs
  if (!is.null(level)) hit <- hit & pe$level == level
  stopifnot(sum(hit) == 1)
  list(est = pe$est[hit], se = pe$se[hit])
}
by_label <- function(label) {
  hit <- pe$label == label
  stopifnot(sum(hit) == 1)
  list(est = pe$est[hit], se = pe$se[hit])
}

out <- list(
  source = paste(
    "lavaan two-level SEM, ML (estimator = 'ML', cluster = 'patient'),",
    "computed by benchmarks/lavaan_mediation.R"
  ),
  data = data_file,
  data_md5 = unname(tools::md5sum(data_file)),
  n_rows = nrow(d),
  n_patients = length(unique(d$patient)),
  lavaan_version = as.character(packageVersion("lavaan")),
  r_version = R.version.string,
  date = format(Sys.Date()),
  model_syntax = model,
  columns = list(x = "alliance", y = "symptoms", z = "baseline", cluster = "patient"),
  loglik = as.numeric(logLik(fit)),
  estimates = list(
    a = by_label("a"),
    b = by_label("b"),
    c_prime = by_label("cp"),
    ab = by_label("ab"),
    total = by_label("total"),
    between_residual_var_x = by_label("vx"),
    between_residual_var_y = by_label("vy"),
    intercept_between_x = row("x", "~1", "", 2),
    intercept_between_y = row("y", "~1", "", 2),
    within_var_x = row("x", "~~", "x", 1),
    within_var_y = row("y", "~~", "y", 1),
    within_cov_xy = row("x", "~~", "y", 1)
  ),
  note = paste(
    "est and se are lavaan's ML estimates and standard errors (se of ab and total by the delta",
    "method); variances are ML (not REML); z enters uncentred, so the between intercepts are",
    "the means of x and y at z = 0"
  )
)

dir.create(dirname(out_file), showWarnings = FALSE, recursive = TRUE)
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = NA), out_file)
print(summary(fit))
cat("wrote", out_file, "\n")
