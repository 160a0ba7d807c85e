# Reference numbers for peerevidence.stats.metareg.multilevel, written to metareg_multilevel.json.
#
# Made with: R 4.2.2 Patched (2022-11-10 r83330), metafor 3.8-1, metadat (Debian bookworm).
# Run from the repository root:  Rscript tests/data/metafor/make_metareg_multilevel_reference.R
#
# Data: dat.konstantopoulos2011 (56 studies of schools within 11 districts).
# Sampling covariance: vcalc(vi, cluster = district, obs = school, rho = r) — estimates of one
# district correlate rho, as if several results of one study shared participants.
# Model: rma.mv(yi, V, random = ~ 1 | district/school), REML, nlminb with rel.tol = 1e-10.
suppressPackageStartupMessages(library(metafor))
num <- function(x) {
  s <- ifelse(is.na(x), "null", sprintf("%.17g", as.numeric(x)))
  if (length(s) == 1) s else paste0("[", paste(s, collapse = ", "), "]")
}
obj <- function(...) {
  a <- list(...)
  paste0("{", paste(sprintf("\"%s\": %s", names(a), unlist(a)), collapse = ", "), "}")
}
dat <- dat.konstantopoulos2011
fits <- sapply(c(0.2, 0.5, 0.8), function(r) {
  V <- vcalc(vi, cluster = district, obs = school, data = dat, rho = r)
  res <- rma.mv(yi, V, random = ~ 1 | district/school, data = dat,
                control = list(rel.tol = 1e-10, eval.max = 10000, iter.max = 10000))
  obj(rho = num(r), beta = num(res$beta), se = num(res$se), ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub),
      sigma2 = num(res$sigma2), ll_reml = num(logLik(res)), QE = num(res$QE))
})
out <- obj(
  source = "\"tests/data/metafor/make_metareg_multilevel_reference.R\"",
  metafor_version = paste0("\"", packageVersion("metafor"), "\""),
  data = obj(district = num(dat$district), school = num(dat$school), yi = num(dat$yi), vi = num(dat$vi)),
  fits = paste0("[", paste(fits, collapse = ", "), "]")
)
writeLines(out, "tests/data/metafor/metareg_multilevel.json")
