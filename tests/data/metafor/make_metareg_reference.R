# Reference numbers for peerevidence.stats.metareg, written to metareg_bcg.json.
#
# Made with: R 4.2.2 Patched (2022-11-10 r83330), metafor 3.8-1, metadat (Debian bookworm).
# Run from the repository root:  Rscript tests/data/metafor/make_metareg_reference.R
# The tests read the stored JSON and never need R.
#
# Data: dat.bcg (Colditz et al. 1994), the BCG vaccine trials shipped with metadat.
#   log RR: escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg)
#   log OR: escalc(measure = "OR", ...)   (Peters' test)
# Fits:
#   rma(yi, vi, mods = ~ ablat + alloc)       meta-regression, REML (metafor defaults)
#   rma(yi, vi, mods = ~ ablat)               one continuous moderator
#   rma(yi, vi, mods = ~ alloc)               subgroup-difference test (QM)
#   rma(yi, vi, subset = alloc == g)          each subgroup separately
#   leave1out(rma(yi, vi))
#   cumul(rma(yi, vi), order = year)          cumulative meta-analysis by year (ties: data order)
#   regtest(rma(yi, vi))                      Egger-type test, model "rma", predictor "sei"
#   regtest(rma(yi, vi), model = "lm")        classical Egger test
#   regtest(rma(yi, vi), model = "rma", predictor = "vi")   PEESE
#   regtest(rma(logOR), model = "lm", predictor = "ninv")   Peters' test (ni = total n)
suppressPackageStartupMessages(library(metafor))

num <- function(x) {
  x <- as.numeric(x)
  s <- ifelse(is.na(x), "null", sprintf("%.17g", x))
  if (length(s) == 1) s else paste0("[", paste(s, collapse = ", "), "]")
}
str1 <- function(x) paste0("\"", x, "\"")
strv <- function(x) paste0("[", paste(str1(x), collapse = ", "), "]")
obj <- function(...) {
  a <- list(...)
  paste0("{", paste(sprintf("\"%s\": %s", names(a), unlist(a)), collapse = ", "), "}")
}

dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
dat$alloc <- factor(dat$alloc)

fit_json <- function(res) {
  obj(
    beta = num(res$beta), se = num(res$se), zval = num(res$zval), pval = num(res$pval),
    ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub),
    tau2 = num(res$tau2), se_tau2 = num(res$se.tau2),
    QM = num(res$QM), QMdf = num(res$QMdf[1]), QMp = num(res$QMp),
    QE = num(res$QE), QEp = num(res$QEp),
    I2 = num(res$I2), H2 = num(res$H2),
    R2 = num(if (is.null(res$R2)) NA else res$R2),
    k = num(res$k), p = num(res$p), ll_reml = num(logLik(res)),
    names = strv(rownames(res$beta))
  )
}

m_both <- rma(yi, vi, mods = ~ ablat + alloc, data = dat)
m_ablat <- rma(yi, vi, mods = ~ ablat, data = dat)
m_alloc <- rma(yi, vi, mods = ~ alloc, data = dat)
m0 <- rma(yi, vi, data = dat)

groups <- levels(dat$alloc)
sub <- sapply(groups, function(g) {
  r <- rma(yi, vi, data = dat, subset = alloc == g)
  obj(group = str1(g), k = num(r$k), mu = num(r$beta), se = num(r$se), tau2 = num(r$tau2),
      ci_lb = num(r$ci.lb), ci_ub = num(r$ci.ub))
})

l1 <- leave1out(m0)
loo <- obj(estimate = num(l1$estimate), se = num(l1$se), ci_lb = num(l1$ci.lb), ci_ub = num(l1$ci.ub),
           pval = num(l1$pval), Q = num(l1$Q), tau2 = num(l1$tau2), I2 = num(l1$I2))

cu <- cumul(m0, order = dat$year)
cum <- obj(order = num(order(dat$year)), estimate = num(cu$estimate), se = num(cu$se),
           ci_lb = num(cu$ci.lb), ci_ub = num(cu$ci.ub), tau2 = num(cu$tau2))

rt <- regtest(m0)
rt_lm <- regtest(m0, model = "lm")
rt_peese <- regtest(m0, predictor = "vi")
dor <- escalc(measure = "OR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
dor$ni <- with(dat.bcg, tpos + tneg + cpos + cneg)
m_or <- rma(yi, vi, data = dor)
rt_peters <- regtest(m_or, model = "lm", predictor = "ninv", ni = dor$ni)
rtj <- function(r) obj(zval = num(r$zval), pval = num(r$pval), dfs = num(if (is.null(r$dfs)) NA else r$dfs),
                       est = num(r$est), ci_lb = num(r$ci.lb), ci_ub = num(r$ci.ub))

out <- obj(
  source = str1("tests/data/metafor/make_metareg_reference.R"),
  metafor_version = str1(as.character(packageVersion("metafor"))),
  R_version = str1(R.version.string),
  data = obj(trial = num(dat$trial), year = num(dat$year), ablat = num(dat$ablat),
             alloc = strv(as.character(dat$alloc)), yi = num(dat$yi), vi = num(dat$vi),
             yi_or = num(dor$yi), vi_or = num(dor$vi), ni = num(dor$ni)),
  ablat_alloc = fit_json(m_both),
  ablat = fit_json(m_ablat),
  alloc = fit_json(m_alloc),
  intercept_only = fit_json(m0),
  subgroups = paste0("[", paste(sub, collapse = ", "), "]"),
  leave1out = loo,
  cumulative = cum,
  regtest_rma_sei = rtj(rt),
  regtest_lm_sei = rtj(rt_lm),
  regtest_rma_vi = rtj(rt_peese),
  regtest_peters = rtj(rt_peters)
)
writeLines(out, "tests/data/metafor/metareg_bcg.json")
