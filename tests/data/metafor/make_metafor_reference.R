# Regenerates tests/data/metafor_reference.json (issue 11): eight schools and BCG with
# metafor's REML and DL fits, predict(), blup(), the default Q-profile CI of tau^2 and the
# REML log-likelihood at fixed tau.
#
# Pinned: R 4.2.2 Patched (2022-11-10 r83330), metafor 3.8-1 (Debian r-cran-metafor).
# Run from the repository root:
#     Rscript tests/data/metafor/make_metafor_reference.R [OUT]
# OUT defaults to tests/data/metafor_reference.json.  Numbers are written with 15
# significant digits and the layout of the stored file, which this reproduces byte for byte (first made from shared/reference, whose README
# gives the rma()/predict()/blup() calls this script repeats).  The fixed-tau grid is
# tau_hat + sqrt(mean(vi)) * c(0, .05, .1, .3, 1, 3).

stopifnot(R.version$major == "4", R.version$minor == "2.2")
stopifnot(as.character(packageVersion("metafor")) == "3.8.1")
suppressPackageStartupMessages(library(metafor))

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "tests/data/metafor_reference.json"

num <- function(x) if (is.na(x) || !is.finite(x)) "null" else sprintf("%.15g", x)
tojson <- function(x, indent = "") {
  inner <- paste0(indent, " ")
  if (is.list(x) && !is.null(names(x))) {
    items <- mapply(function(k, v) paste0(inner, "\"", k, "\": ", tojson(v, inner)), names(x), x)
    return(paste0("{\n", paste(items, collapse = ",\n"), "\n", indent, "}"))
  }
  if (is.list(x) || length(x) != 1) {
    items <- paste0(inner, vapply(as.list(x), tojson, "", indent = inner))
    return(paste0("[\n", paste(items, collapse = ",\n"), "\n", indent, "]"))
  }
  if (is.character(x)) return(paste0("\"", gsub("\"", "\\\\\"", x), "\""))
  num(as.numeric(x))
}

fit_block <- function(yi, vi, method) {
  r <- rma(yi, vi, method = method)
  p <- predict(r)
  b <- blup(r)
  qp <- confint(r)$random
  list(
    method = method, test = r$test, k = r$k, mu = c(r$beta), se = r$se, zval = r$zval,
    pval = r$pval, ci_lb = r$ci.lb, ci_ub = r$ci.ub, tau2 = r$tau2, se_tau2 = r$se.tau2,
    tau = sqrt(r$tau2), I2 = r$I2, H2 = r$H2, QE = r$QE, QEp = r$QEp, pi_lb = p$pi.lb,
    pi_ub = p$pi.ub, pred_se = p$se, logLik = c(logLik(r)),
    tau2_QP_ci_lb = qp["tau^2", "ci.lb"], tau2_QP_ci_ub = qp["tau^2", "ci.ub"],
    blup_pred = as.list(b$pred), blup_se = as.list(b$se)
  )
}

dataset <- function(study, yi, vi) {
  reml <- fit_block(yi, vi, "REML")
  taus <- sqrt(reml$tau2) + sqrt(mean(vi)) * c(0, 0.05, 0.1, 0.3, 1, 3)
  ll <- vapply(taus, function(t) c(logLik(rma(yi, vi, tau2 = t^2, method = "REML"))), 0)
  list(
    study = as.list(study), yi = as.list(yi), vi = as.list(vi), REML = reml,
    DL = fit_block(yi, vi, "DL"), REML_ll_fixed_tau = list(tau = as.list(taus), ll = as.list(ll))
  )
}

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
doc <- list(
  source = paste(
    "R metafor 3.8.1 (R 4.2.2): rma(yi, vi, method=...) and predict(); values as produced by",
    "the project's shared reference set (shared/reference/metafor_reference.json, see its",
    "README for the R code). eight_schools: Rubin's eight schools as rounded in Gelman et al.,",
    "BDA; bcg: metafor's dat.bcg, escalc(measure='RR')."
  ),
  metafor_version = "3.8.1",
  R_version = R.version.string,
  eight_schools = dataset(LETTERS[1:8], c(28, 8, -3, 7, -1, 1, 18, 12),
    c(15, 10, 16, 11, 9, 11, 10, 18)^2),
  bcg = dataset(paste0(dat.bcg$author, " (", dat.bcg$year, ")"), c(bcg$yi), c(bcg$vi))
)
cat(tojson(doc), file = out)  # no final newline, like the stored file
cat("wrote", out, "\n")
