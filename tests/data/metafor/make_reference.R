# Reference numbers for peerevidence's frequentist line (issue 12), from metafor.
#
# Pinned: R 4.2.2 Patched (2022-11-10 r83330), metafor 3.8-1 (Debian r-cran-metafor).
# The script stops if either differs.  It needs no other R package (JSON is written by
# hand below; jsonlite is not part of the pinned installation).
#
# Run from the repository root:
#     Rscript tests/data/metafor/make_reference.R
# It reads   tests/data/metafor/cochrane_inputs.csv  (yi, vi of the 40 Cochrane units in
#            tests/data/cochrane_subset.json, long format; made from that file)
# and writes tests/data/metafor/edge_cases.json      (one case per defect of issue 12)
#            tests/data/metafor/reference_sets.json  (eight schools, BCG: REML, HKSJ, QP, PI)
#            tests/data/metafor/cochrane_knha.json   (the 40 Cochrane units: same)
#            tests/data/metafor/random_sets.json     (4,000 seeded random sets, k = 2..10)
#
# What each fit stores (all with metafor's defaults unless said):
#   reml : rma(yi, vi, method = "REML") and predict()  (Wald z CI and z PI; threshold 1e-5)
#   knha : rma(yi, vi, method = "REML", test = "knha") and predict(): the Hartung-Knapp-
#          Sidik-Jonkman CI (t, k - 1 df, no truncation of the scale factor) and the PI
#          mu +/- t_{k-1} sqrt(se_knha^2 + tau^2) that predict() gives for such a fit
#   qp   : confint(rma(...REML), control = list(tol = 1e-12))$random: the Q-profile CI for
#          tau^2 (and I^2).  metafor's default root tolerance (.Machine$double.eps^0.25 =
#          1.2e-4) is too loose to compare at 1e-6, so the roots are found to 1e-12; the
#          default-tolerance bounds are stored too (qp_default) to show they agree within it.
#   warnings : the warnings metafor gave while fitting (e.g. ll0check, variance ratio).

stopifnot(R.version$major == "4", R.version$minor == "2.2")
stopifnot(as.character(packageVersion("metafor")) == "3.8.1")
suppressPackageStartupMessages(library(metafor))

out_dir <- "tests/data/metafor"

# ------------------------------------------------------------------ a minimal JSON writer
num <- function(x) {
  if (is.na(x) || !is.finite(x)) return("null")
  sprintf("%.17g", x)
}
tojson <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x)) {
    if (!is.null(names(x))) {
      items <- mapply(function(k, v) paste0("\"", k, "\": ", tojson(v)), names(x), x)
      return(paste0("{", paste(items, collapse = ", "), "}"))
    }
    return(paste0("[", paste(vapply(x, tojson, ""), collapse = ", "), "]"))
  }
  if (length(x) != 1) return(tojson(as.list(x)))
  if (is.character(x)) {
    x <- gsub("\\", "\\\\", x, fixed = TRUE)
    x <- gsub("\"", "\\\"", x, fixed = TRUE)
    x <- gsub("\n", "\\n", x, fixed = TRUE)
    x <- gsub("\t", "\\t", x, fixed = TRUE)
    return(paste0("\"", x, "\""))
  }
  if (is.logical(x)) return(if (is.na(x)) "null" else if (x) "true" else "false")
  num(as.numeric(x))
}
write_json <- function(x, name) {
  path <- file.path(out_dir, name)
  writeLines(tojson(x), path)
  cat("wrote", path, "\n")
}

# ------------------------------------------------------------------ one complete fit
quiet <- function(expr) {
  msgs <- character(0)
  value <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(conditionMessage(e), class = "fit_error")),
    warning = function(w) {
      msgs <<- c(msgs, conditionMessage(w))
      invokeRestart("muffleWarning")
    }
  )
  list(value = value, warnings = msgs)
}

fit_all <- function(yi, vi, qp = TRUE) {
  k <- length(yi)
  res <- list(yi = as.list(yi), vi = as.list(vi), k = k)
  f <- quiet(rma(yi, vi, method = "REML"))
  res$warnings <- as.list(f$warnings)
  if (inherits(f$value, "fit_error")) {
    res$error <- as.character(f$value)
    return(res)
  }
  r <- f$value
  p <- predict(r)
  res$reml <- list(
    mu = c(r$beta), se = r$se, ci_lb = r$ci.lb, ci_ub = r$ci.ub, zval = r$zval, pval = r$pval,
    tau2 = r$tau2, se_tau2 = r$se.tau2, I2 = r$I2, H2 = r$H2, QE = r$QE, QEp = r$QEp,
    pi_lb = p$pi.lb, pi_ub = p$pi.ub, ll = c(logLik(r))
  )
  kh <- quiet(rma(yi, vi, method = "REML", test = "knha"))
  if (inherits(kh$value, "fit_error")) {
    res$error <- as.character(kh$value)
    return(res)
  }
  rk <- kh$value
  pk <- predict(rk)
  res$knha <- list(
    se = rk$se, ci_lb = rk$ci.lb, ci_ub = rk$ci.ub, tval = rk$zval, pval = rk$pval,
    df = if (is.null(rk$ddf) || is.na(rk$ddf)) NA else rk$ddf, test = rk$test,
    pi_lb = pk$pi.lb, pi_ub = pk$pi.ub
  )
  if (qp && k >= 2) {
    tight <- confint(r, control = list(tol = 1e-12))$random
    loose <- suppressWarnings(confint(r))$random
    if (is.null(tight) || is.null(loose)) return(res)
    res$qp <- list(
      tau2_lb = tight["tau^2", "ci.lb"], tau2_ub = tight["tau^2", "ci.ub"],
      I2_lb = tight["I^2(%)", "ci.lb"], I2_ub = tight["I^2(%)", "ci.ub"]
    )
    res$qp_default <- list(tau2_lb = loose["tau^2", "ci.lb"], tau2_ub = loose["tau^2", "ci.ub"])
  }
  res
}

# Fisher scoring that truncates a negative step at 0 (what peerevidence did before issue
# 12) instead of halving it as rma() does: used only to find sets where the two differ.
truncating_reml <- function(yi, vi, threshold = 1e-5) {
  k <- length(yi)
  tau2 <- max(0, sum((yi - mean(yi))^2) / (k - 1) - mean(vi))
  for (i in 1:100) {
    w <- 1 / (vi + tau2)
    P <- diag(w) - outer(w, w) / sum(w)
    PP <- P %*% P
    new <- max(0, tau2 + (c(t(yi) %*% PP %*% yi) - sum(diag(P))) / sum(diag(PP)))
    if (abs(new - tau2) < threshold) return(new)
    tau2 <- new
  }
  NA
}

random_set <- function() {
  k <- sample(2:10, 1)
  vi <- exp(runif(k, log(0.01), log(1.1)))
  tau2 <- sample(c(0, 0, 0.01, 0.05, 0.2, 0.5), 1)
  mu <- rnorm(1, 0, 0.5)
  list(yi = rnorm(k, mu, sqrt(vi + tau2)), vi = vi)
}

# ------------------------------------------------------------------ random sets
# "Rscript make_reference.R --no-random" remakes everything but random_sets.json (the
# 4,000 full fits take ~2 CPU minutes); the searches below then use rma() alone.
skip_random <- "--no-random" %in% commandArgs(trailingOnly = TRUE)
set.seed(20261206)
n_random <- 4000
inputs <- lapply(seq_len(n_random), function(i) random_set())  # rma/confint use no RNG
light_fit <- function(yi, vi) {
  f <- quiet(rma(yi, vi, method = "REML"))
  out <- list(yi = as.list(yi), vi = as.list(vi), warnings = as.list(f$warnings))
  if (!inherits(f$value, "fit_error")) out$reml <- list(tau2 = f$value$tau2)
  out
}
random <- lapply(seq_len(n_random), function(i) {
  s <- inputs[[i]]
  c(list(id = i), if (skip_random) light_fit(s$yi, s$vi) else fit_all(s$yi, s$vi))
})
if (!skip_random) write_json(list(
  source = paste(
    "4,000 random sets from tests/data/metafor/make_reference.R (set.seed(20261206)):",
    "k ~ U{2..10}, log vi ~ U(log 0.01, log 1.1), tau2 in {0, 0, .01, .05, .2, .5},",
    "mu ~ N(0, .5^2), yi ~ N(mu, vi + tau2); metafor 3.8-1, R 4.2.2"
  ),
  sets = random
), "random_sets.json")

# ------------------------------------------------------------------ edge cases
edge <- list()
add_edge <- function(name, defect, what, fitted) {
  edge[[length(edge) + 1]] <<- c(list(name = name, defect = defect, what = what), fitted)
}

# Defect 1: ll0check.  Search seeded k = 3 sets (log vi ~ U(log 0.01, log 1.1), as above)
# until metafor warns that Fisher scoring got stuck at a local maximum.
set.seed(12)
found <- 0
tries <- 0
while (found < 4 && tries < 200000) {
  tries <- tries + 1
  k <- sample(3:5, 1)
  vi <- exp(runif(k, log(0.01), log(1.1)))
  yi <- rnorm(k, 0, sqrt(vi + sample(c(0, 0.05, 0.5), 1)))
  w <- quiet(rma(yi, vi, method = "REML"))$warnings
  if (any(grepl("local maximum", w))) {
    found <- found + 1
    add_edge(sprintf("ll0check_%d", found), 1,
      sprintf("metafor's ll0check sets tau2 = 0 (search try %d, set.seed(12))", tries),
      fit_all(yi, vi))
  }
}
for (s in random) {
  if (any(grepl("local maximum", unlist(s$warnings)))) {
    add_edge(sprintf("ll0check_random_%d", s$id), 1, "ll0check triggered in random_sets.json",
      fit_all(unlist(s$yi), unlist(s$vi)))
  }
}

# Defect 2: step-halving near tau2 = 0: random sets where truncating the step differs.
halving <- 0
for (s in random) {
  if (!is.null(s$reml) && halving < 6) {
    t <- truncating_reml(unlist(s$yi), unlist(s$vi))
    if (!is.na(t) && abs(t - s$reml$tau2) > 1e-7) {
      halving <- halving + 1
      add_edge(sprintf("halving_%d", s$id), 2,
        sprintf("step-halving differs from truncation by %.3g in tau2", t - s$reml$tau2),
        fit_all(unlist(s$yi), unlist(s$vi)))
    }
  }
}

# Defect 3: one tiny sampling variance among ordinary ones.
base_y <- c(-0.89, -1.59, -1.35, -0.22, -0.79, 0.01)
base_v <- c(0.33, 0.19, 0.42, 0.05, 0.007, 0.056)
for (tiny in c(1e-9, 1e-10, 1e-12)) {
  v <- base_v
  v[3] <- tiny
  add_edge(sprintf("tiny_vi_%g", tiny), 3, sprintf("vi[3] = %g among vi 0.007-0.33", tiny),
    fit_all(base_y, v))
}

# Sets with vi[1] = 1e-10 on which the pre-issue-12 Python code (closed-form traces) gave a
# different tau2 / SE than the stable one; found by a seeded search in Python
# (numpy default_rng(3): k ~ U{3..7}, log vi ~ U(log .01, log 1.1), vi[1] = 1e-10,
# yi ~ N(0, vi + tau2), tau2 in {0, .01, .05}), values written out to 17 digits.
found_y <- list(
  c(-8.652130762749418e-06, 2.184681817315199, 0.08869698352336884, -0.04399435919426133,
    -0.07784691213708173, -0.2059550763625644, -0.15358873239991788),
  c(0.121889300485902, -0.258029695722204, -0.10242003696573368, 0.1617854950854831,
    0.4742753799880403, -0.2724352760452973),
  c(5.803500161908991e-06, 0.022054117249673297, 0.08296128546019192, -1.335593611015887,
    0.9117966258290402)
)
found_v <- list(
  c(1e-10, 0.43223092079548514, 0.15431968281514444, 0.015565157577902933,
    0.07659178085690557, 0.09504555605805443, 0.021187994516892614),
  c(1e-10, 0.21083345439992027, 0.26378508923444133, 0.03958749265741147,
    0.010070286944108478, 0.9709898367138108),
  c(1e-10, 0.05807358331377797, 0.015327314359733231, 0.22301804590870727,
    0.7970462073035447)
)
for (i in seq_along(found_y)) {
  add_edge(sprintf("tiny_vi_search_%d", i), 3, "vi[1] = 1e-10; old closed-form traces went wrong",
    fit_all(found_y[[i]], found_v[[i]]))
}
# A homogeneous set (tau2 = 0) where the closed form made tr(PP) = 0 at vi = 1e-12.
for (tiny in c(1e-10, 1e-12)) {
  add_edge(sprintf("tiny_vi_homogeneous_%g", tiny), 3, sprintf("homogeneous, vi[3] = %g", tiny),
    fit_all(c(0.21, 0.35, 0.12, 0.30, 0.18, 0.26), c(0.04, 0.09, tiny, 0.06, 0.02, 0.05)))
}

# Defect 8: k = 1.
add_edge("k1", 8, "a single study", fit_all(0.3, 0.04, qp = FALSE))

write_json(list(
  source = "tests/data/metafor/make_reference.R; metafor 3.8-1, R 4.2.2",
  cases = edge
), "edge_cases.json")

# ------------------------------------------------------------------ effect sizes
smd3 <- escalc("SMD", m1i = 1, sd1i = 1, n1i = 2, m2i = 0, sd2i = 1, n2i = 1)
smd4 <- escalc("SMD", m1i = 1.3, sd1i = 1.1, n1i = 2, m2i = 0.2, sd2i = 0.9, n2i = 2)
or_frac <- escalc("OR", ai = 2.5, bi = 7.5, ci = 4, di = 6)
rr_frac <- escalc("RR", ai = 2.5, bi = 7.5, ci = 4, di = 6)
write_json(list(
  source = "tests/data/metafor/make_reference.R; metafor 3.8-1 escalc()",
  smd_n3 = list(args = list(m1i = 1, sd1i = 1, n1i = 2, m2i = 0, sd2i = 1, n2i = 1),
    yi = smd3$yi, vi = smd3$vi),
  smd_n4 = list(args = list(m1i = 1.3, sd1i = 1.1, n1i = 2, m2i = 0.2, sd2i = 0.9, n2i = 2),
    yi = smd4$yi, vi = smd4$vi),
  or_fractional = list(args = list(ai = 2.5, bi = 7.5, ci = 4, di = 6),
    yi = or_frac$yi, vi = or_frac$vi),
  rr_fractional = list(args = list(ai = 2.5, bi = 7.5, ci = 4, di = 6),
    yi = rr_frac$yi, vi = rr_frac$vi)
), "effects.json")

# ------------------------------------------------------------------ reference sets
es <- list(yi = c(28, 8, -3, 7, -1, 1, 18, 12), vi = c(15, 10, 16, 11, 9, 11, 10, 18)^2)
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
write_json(list(
  source = "tests/data/metafor/make_reference.R; eight schools (BDA rounding), metafor dat.bcg (RR)",
  eight_schools = fit_all(es$yi, es$vi),
  bcg = fit_all(c(bcg$yi), c(bcg$vi))
), "reference_sets.json")

# ------------------------------------------------------------------ Cochrane units
co <- read.csv(file.path(out_dir, "cochrane_inputs.csv"), stringsAsFactors = FALSE)
keys <- unique(co$analysis_key)
cochrane <- lapply(keys, function(key) {
  d <- co[co$analysis_key == key, ]
  c(list(analysis_key = key), fit_all(d$yi, d$vi))
})
write_json(list(
  source = paste("tests/data/cochrane_subset.json units (yi, vi via cochrane_inputs.csv);",
    "tests/data/metafor/make_reference.R; metafor 3.8-1, R 4.2.2"),
  cases = cochrane
), "cochrane_knha.json")
