# Reference numbers from R for GLM inference: sandwich covariances
# (vcovHC, vcovCL), confidence intervals, hat values, residuals, predictions
# with standard errors, analysis of deviance, negative binomial with
# estimated theta (MASS::glm.nb), Gamma shape (MASS::gamma.shape) and
# Firth-type bias reduction (brglm2).  Run from this folder:
#
#     Rscript make_reference.R
#
# Reads the CSV files of ../r_reference/ (and brglm2's endometrial data) and
# writes reference.json.  Every glm is fitted with
# glm.control(epsilon = 1e-14, maxit = 1000), polished (see polish()) and
# checked converged.  Numbers are written with sprintf("%.17g") by the JSON
# writer in ../r_reference/json.R.  See README.md.

suppressPackageStartupMessages({
  library(MASS)
  library(sandwich)
  library(brglm2)
})

source("../r_reference/json.R")   # sc(), to_json()

TIGHT <- glm.control(epsilon = 1e-14, maxit = 1000)

rows <- function(m) { m <- as.matrix(m); dimnames(m) <- NULL; m }
uv <- function(x) as.vector(unname(x))

# Run expr, fail on any warning (every stored fit must be warning-free),
# unless allow = TRUE, in which case the warnings are returned.
no_warn <- function(expr, what) {
  withCallingHandlers(expr, warning = function(w)
    stop(what, ": unexpected warning: ", conditionMessage(w)))
}
collect_warn <- function(expr) {
  ws <- character(0)
  val <- withCallingHandlers(expr, warning = function(w) {
    ws <<- c(ws, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  list(value = val, warnings = unique(ws))
}

## ------------------------------------------------------------------ data
rd <- function(f) read.csv(file.path("..", "r_reference", f), stringsAsFactors = FALSE)
idx0 <- function(d) seq_len(nrow(d)) - 1L     # row index from 0

warpbreaks <- rd("warpbreaks.csv")
warpbreaks$wool <- factor(warpbreaks$wool, levels = c("A", "B"))
warpbreaks$tension <- factor(warpbreaks$tension, levels = c("L", "M", "H"))

lbw <- rd("lbw.csv")
lbw$race_black <- as.numeric(lbw$race == "black")   # "white" is the base
lbw$race_other <- as.numeric(lbw$race == "other")

spector <- rd("spector.csv")
cancer <- rd("cancer.csv")                          # drug numeric 1/2/3

insectsprays <- rd("insectsprays.csv")
insectsprays$spray <- factor(insectsprays$spray, levels = LETTERS[1:6])
i_ins <- idx0(insectsprays)
insectsprays$w_prior <- 1 + (i_ins %% 3) / 2
insectsprays$log_off <- log(1 + (i_ins %% 5) / 10)

star98 <- rd("star98.csv")
star98$n_trials <- star98$NABOVE + star98$NBELOW
star98$prop <- star98$NABOVE / star98$n_trials
star98_x <- setdiff(names(rd("star98.csv")), c("NABOVE", "NBELOW"))

longley <- rd("longley.csv")
scotland <- rd("scotland.csv")

quine <- rd("quine.csv")
quine$Eth <- factor(quine$Eth, levels = c("A", "N"))
quine$Sex <- factor(quine$Sex, levels = c("F", "M"))
quine$Age <- factor(quine$Age, levels = c("F0", "F1", "F2", "F3"))
quine$Lrn <- factor(quine$Lrn, levels = c("AL", "SL"))

medpar1 <- rd("medpar1.csv")
medpar1$type3 <- as.numeric(medpar1$admitype == "type3")  # "type1|2" is the base

endometrial <- local({
  e <- new.env()
  data("endometrial", package = "brglm2", envir = e)
  e$endometrial
})

# made-up completely separated data: y = (x > 5), z arbitrary
separated <- data.frame(x = 1:10, z = c(3, 1, 4, 1, 5, 9, 2, 6, 5, 3))
separated$y <- as.numeric(separated$x > 5)

for (nm in c("warpbreaks", "lbw", "spector", "cancer", "star98", "longley",
             "scotland", "quine", "medpar1", "endometrial", "separated")) {
  d <- get(nm)
  if (is.null(d$w_prior)) d$w_prior <- rep(1, nrow(d))
  assign(nm, d)
}
star98$w_prior <- star98$n_trials

## ----------------------------------------------------------------- fitting
# One glm() call; prior weights are always the data column w_prior (ones
# when the case has none), offsets are in the formula (offset(...)) so that
# predict(newdata) picks them up.
glm1 <- function(formula, family, data, control, start = NULL)
  glm(formula, family = family, data = data, weights = w_prior,
      start = start, control = control)

# Tight fit, then polish: glm stops on the relative change of the deviance,
# which is quadratic in the coefficient error, so epsilon = 1e-14 can leave
# coefficients ~1e-7 (relative) from the optimum when IRLS converges only
# linearly (non-canonical links).  Continue R's own IRLS one step at a time
# (glm(start = b, maxit = 1)) until the coefficients stop moving (max
# relative step <= 1e-15, or no decrease over 5 steps once below 1e-10: the
# rounding-noise floor; at most 500 steps), then refit with start = b and the
# tight control.  The stored object is that converged refit.
tight_glm <- function(name, formula, family, data) {
  fam <- family
  fit0 <- no_warn(glm1(formula, fam, data, TIGHT), name)
  if (!isTRUE(fit0$converged) || fit0$boundary)
    stop(name, ": tight fit not converged / on the boundary")
  b <- coef(fit0)
  hist <- numeric(0)
  for (k in 1:500) {
    f1 <- suppressWarnings(glm1(formula, fam, data,
                                glm.control(epsilon = 1e-14, maxit = 1), start = b))
    step <- max(abs(coef(f1) - b) / abs(coef(f1)))
    hist <- c(hist, step)
    b <- coef(f1)
    if (step <= 1e-15) break
    if (k >= 10 && step < 1e-10 &&
        min(hist[(k - 4):k]) >= 0.9 * min(hist[1:(k - 5)])) break
  }
  fit <- no_warn(glm1(formula, fam, data, TIGHT, start = b), name)
  if (!isTRUE(fit$converged) || fit$boundary)
    stop(name, ": polished refit not converged / on the boundary")
  if (fit$rank < ncol(model.matrix(fit))) stop(name, ": rank deficient")
  cat(sprintf("fit  %-34s n=%4d p=%2d iter=%3d polish=%3d last=%.1e moved=%.1e\n",
              name, nrow(model.matrix(fit)), ncol(model.matrix(fit)),
              fit0$iter, k, step, max(abs(coef(fit) - coef(fit0)) / abs(coef(fit)))))
  fit
}

offset_of <- function(fit) {
  o <- fit$offset
  if (is.null(o)) rep(0, nrow(model.matrix(fit))) else uv(o)
}

## ------------------------------------------------------------------ cases
estimated_dispersion <- c("Gamma", "gaussian")

make_case <- function(name, formula, family, data, G, newdata) {
  fit <- tight_glm(name, formula, family, data)
  X <- model.matrix(fit)
  n <- nrow(X)
  cluster <- as.integer((idx0(data) * 7L) %% G)
  stopifnot(length(unique(cluster)) == G, n == nrow(data))
  fam <- fit$family$family
  summ <- summary(fit)
  se <- sqrt(diag(vcov(fit)))

  # newX / new_offset exactly as predict() builds them
  tt <- delete.response(terms(fit))
  mf_new <- model.frame(tt, newdata, xlev = fit$xlevels)
  newX <- model.matrix(tt, mf_new, contrasts.arg = fit$contrasts)
  new_off <- model.offset(mf_new)
  if (is.null(new_off)) new_off <- rep(0, nrow(newX))
  stopifnot(identical(colnames(newX), colnames(X)),
            all(newX[1:3, ] == X[1:3, ]))
  pl <- no_warn(predict(fit, newdata, type = "link", se.fit = TRUE), name)
  pr <- no_warn(predict(fit, newdata, type = "response", se.fit = TRUE), name)
  stopifnot(max(abs(pl$fit - (drop(newX %*% coef(fit)) + new_off))) <=
              1e-10 * max(1, abs(pl$fit)))

  hc <- lapply(c(HC0 = "HC0", HC1 = "HC1", HC2 = "HC2", HC3 = "HC3"),
               function(t) rows(no_warn(vcovHC(fit, type = t), name)))
  CL <- no_warn(vcovCL(fit, cluster = cluster), name)
  # vcovCL's defaults for a glm: type "HC0", cadjust = TRUE -> G / (G - 1)
  CL0 <- vcovCL(fit, cluster = cluster, type = "HC0", cadjust = FALSE)
  # rounding check, scaled by sqrt(V_ii V_jj) (see README: ill-conditioned
  # designs lose digits in bread %*% meat %*% bread)
  sdiff <- function(A, B) {
    s <- sqrt(diag(B)); max(abs(A - B) / outer(s, s))
  }
  d_cl <- sdiff(CL0 * G / (G - 1), CL)
  d_hc <- sdiff(vcovCL(fit, cluster = seq_len(n)) / (n / (n - 1)),
                vcovHC(fit, type = "HC0"))
  cat(sprintf("     vcovCL(HC0, cadjust = FALSE) * G/(G-1) vs vcovCL: %.1e; vcovCL(cluster = 1:n) * (n-1)/n vs HC0: %.1e (scaled)\n",
              d_cl, d_hc))
  stopifnot(d_cl <= 1e-6, d_hc <= 1e-6)

  cit <- if (fam %in% estimated_dispersion) {
    q <- qt(0.975, fit$df.residual)
    cbind(coef(fit) - q * se, coef(fit) + q * se)
  } else NULL

  list(
    family = sc(fam),
    link = sc(fit$family$link),
    formula = sc(paste(deparse(formula, width.cutoff = 500L), collapse = " ")),
    X = rows(X),
    names = colnames(X),
    y = uv(fit$y),
    weights = uv(fit$prior.weights),
    offset = offset_of(fit),
    cluster = cluster,
    n_clusters = sc(as.integer(G)),
    coef = uv(coef(fit)),
    vcov = rows(vcov(fit)),
    HC0 = hc$HC0, HC1 = hc$HC1, HC2 = hc$HC2, HC3 = hc$HC3,
    CL = rows(CL),
    sandwich_noise = sc(max(d_cl, d_hc)),
    df_residual = sc(as.integer(fit$df.residual)),
    dispersion = sc(summ$dispersion),
    deviance = sc(fit$deviance),
    null_deviance = sc(fit$null.deviance),
    loglik = sc(as.numeric(logLik(fit))),
    aic = sc(fit$aic),
    confint_default_95 = rows(confint.default(fit, level = 0.95)),
    confint_default_90 = rows(confint.default(fit, level = 0.90)),
    confint_t_95 = if (is.null(cit)) NULL else rows(cit),
    hat = uv(hatvalues(fit)),
    residuals = list(
      deviance = uv(residuals(fit, type = "deviance")),
      pearson = uv(residuals(fit, type = "pearson")),
      working = uv(residuals(fit, type = "working")),
      response = uv(residuals(fit, type = "response"))),
    newX = rows(newX),
    new_offset = uv(new_off),
    predict = list(
      link = uv(pl$fit), link_se = uv(pl$se.fit),
      response = uv(pr$fit), response_se = uv(pr$se.fit))
  )
}

# new rows: the first 3 rows of the data, then 2 made-up rows
nd <- function(d, vars, extra) {
  a <- d[1:3, vars, drop = FALSE]
  rownames(a) <- NULL
  rbind(a, extra[, vars, drop = FALSE])
}
mean_median <- function(d, vars)
  as.data.frame(rbind(colMeans(d[, vars]), apply(d[, vars], 2, median)))

cases <- list()

cases$warpbreaks_poisson_log <- make_case(
  "warpbreaks_poisson_log", breaks ~ wool + tension, poisson("log"), warpbreaks, G = 9,
  nd(warpbreaks, c("wool", "tension"),
     data.frame(wool = factor(c("B", "A"), levels = levels(warpbreaks$wool)),
                tension = factor(c("M", "H"), levels = levels(warpbreaks$tension)))))

lbw_x <- c("age", "lwt", "race_black", "race_other", "smoke", "ptl", "ht", "ui")
f_lbw <- low ~ age + lwt + race_black + race_other + smoke + ptl + ht + ui
cases$lbw_binomial_logit <- make_case(
  "lbw_binomial_logit", f_lbw, binomial("logit"), lbw, G = 12,
  nd(lbw, lbw_x, data.frame(age = c(25, 30), lwt = c(130, 160),
                            race_black = c(0, 1), race_other = c(1, 0),
                            smoke = c(1, 0), ptl = c(0, 1), ht = c(0, 1),
                            ui = c(1, 0))))

cases$spector_binomial_probit <- make_case(
  "spector_binomial_probit", GRADE ~ GPA + TUCE + PSI, binomial("probit"), spector, G = 8,
  nd(spector, c("GPA", "TUCE", "PSI"),
     data.frame(GPA = c(3.0, 2.5), TUCE = c(22, 25), PSI = c(1, 0))))

cases$cancer_gamma_inverse <- make_case(
  "cancer_gamma_inverse", studytime ~ age + drug, Gamma("inverse"), cancer, G = 10,
  nd(cancer, c("age", "drug"), data.frame(age = c(55, 60), drug = c(2, 3))))

cases$insectsprays_poisson_log_wo <- make_case(
  "insectsprays_poisson_log_wo", count ~ spray + offset(log_off), poisson("log"),
  insectsprays, G = 8,
  nd(insectsprays, c("spray", "log_off"),
     data.frame(spray = factor(c("C", "F"), levels = LETTERS[1:6]),
                log_off = log(c(1.2, 1.4)))))

f_star <- as.formula(paste("prop ~", paste(star98_x, collapse = " + ")))
cases$star98_binomial_logit <- make_case(
  "star98_binomial_logit", f_star, binomial("logit"), star98, G = 20,
  nd(star98, star98_x, mean_median(star98, star98_x)))

longley_x <- c("GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR")
cases$longley_gaussian_identity <- make_case(
  "longley_gaussian_identity", TOTEMP ~ GNPDEFL + GNP + UNEMP + ARMED + POP + YEAR,
  gaussian("identity"), longley, G = 8,
  nd(longley, longley_x, mean_median(longley, longley_x)))

scot_x <- c("COUTAX", "UNEMPF", "MOR", "ACT", "GDP", "AGE", "COUTAX_FEMALEUNEMP")
f_scot <- YES ~ COUTAX + UNEMPF + MOR + ACT + GDP + AGE + COUTAX_FEMALEUNEMP
cases$scotland_gamma_log <- make_case(
  "scotland_gamma_log", f_scot, Gamma("log"), scotland, G = 10,
  nd(scotland, scot_x, mean_median(scotland, scot_x)))

## ------------------------------------------------------------------ anova
make_anova <- function(name, formulas, family, data, test) {
  fits <- lapply(seq_along(formulas), function(k)
    tight_glm(sprintf("%s[%d]", name, k), formulas[[k]], family, data))
  big <- fits[[length(fits)]]
  X <- model.matrix(big)
  ncols <- vapply(fits, function(f) ncol(model.matrix(f)), 1L)
  for (k in seq_along(fits)) {
    Xk <- model.matrix(fits[[k]])
    stopifnot(identical(colnames(Xk), colnames(X)[seq_len(ncols[k])]),
              all(Xk == X[, seq_len(ncols[k]), drop = FALSE]))
  }
  stopifnot(all(diff(ncols) > 0))
  a <- no_warn(do.call(anova, c(unname(fits), list(test = test))), name)
  pcol <- if (test == "F") "Pr(>F)" else "Pr(>Chi)"
  out <- list(
    family = sc(big$family$family),
    link = sc(big$family$link),
    formulas = vapply(formulas, function(f)
      paste(deparse(f, width.cutoff = 500L), collapse = " "), ""),
    X = rows(X),
    names = colnames(X),
    y = uv(big$y),
    weights = uv(big$prior.weights),
    offset = offset_of(big),
    columns = as.integer(ncols),
    test = sc(test),
    resid_df = as.integer(round(a[["Resid. Df"]])),
    resid_dev = uv(a[["Resid. Dev"]]),
    df = as.integer(round(a[["Df"]])),
    deviance = uv(a[["Deviance"]]),
    p = uv(a[[pcol]]))
  stopifnot(all(abs(a[["Resid. Df"]] - out$resid_df) == 0, na.rm = TRUE),
            all(abs(a[["Df"]] - out$df) == 0, na.rm = TRUE))
  if (test == "F") {
    out$F <- uv(a[["F"]])
    out$dispersion <- sc(summary(big)$dispersion)
  }
  out
}

anova_out <- list()
anova_out$warpbreaks_poisson_log <- make_anova(
  "anova_warpbreaks",
  list(breaks ~ 1, breaks ~ wool, breaks ~ wool + tension, breaks ~ wool * tension),
  poisson("log"), warpbreaks, "Chisq")
anova_out$cancer_gamma_inverse <- make_anova(
  "anova_cancer",
  list(studytime ~ 1, studytime ~ age, studytime ~ age + drug),
  Gamma("inverse"), cancer, "F")
anova_out$lbw_binomial_logit <- make_anova(
  "anova_lbw",
  list(low ~ 1, low ~ age + lwt + race_black, f_lbw),
  binomial("logit"), lbw, "Chisq")

## ----------------------------------------------------------------- negbin
# MASS::glm.nb alternates a glm fit at fixed theta with theta.ml(), and
# calls theta.ml() with its default eps = .Machine$double.eps^0.25 (absolute
# Newton step); theta.ml restarts from the moment estimate each time, so
# glm.nb's theta is the fixed point of a truncated Newton iteration, ~1e-11
# (relative) from the ML estimate.  glm_nb_tight is glm.nb itself (same body)
# evaluated in an environment where theta.ml defaults to eps = 1e-13, so its
# alternation converges to the joint ML estimate.
theta_ml_tight <- function(y, mu, n = sum(weights), weights, limit = 10,
                           eps = 1e-13, trace = FALSE)
  MASS::theta.ml(y, mu, n, weights, limit = limit, eps = eps, trace = trace)
glm_nb_tight <- MASS::glm.nb
environment(glm_nb_tight) <- list2env(list(theta.ml = theta_ml_tight),
                                      parent = asNamespace("MASS"))

make_negbin <- function(name, formula, data) {
  nb <- no_warn(glm_nb_tight(formula, data = data, control = TIGHT), name)
  if (!isTRUE(nb$converged) || nb$iter >= TIGHT$maxit || !is.null(nb$th.warn))
    stop(name, ": glm.nb not converged")
  # the number of theta / glm alternations is not stored by glm.nb (its $iter
  # is the IRLS count of the last inner glm fit); count them from the trace
  n_alt <- 0L
  nb_tr <- withCallingHandlers(
    glm_nb_tight(formula, data = data,
                 control = glm.control(epsilon = 1e-14, maxit = 1000, trace = 1)),
    message = function(m) {
      if (grepl("^Theta\\(", conditionMessage(m))) n_alt <<- n_alt + 1L
      invokeRestart("muffleMessage")
    })
  stopifnot(identical(coef(nb_tr), coef(nb)), identical(nb_tr$theta, nb$theta))
  nb_stock <- no_warn(MASS::glm.nb(formula, data = data, control = TIGHT), name)
  stopifnot(isTRUE(nb_stock$converged), is.null(nb_stock$th.warn))
  # verification 1: glm.nb again, started from the answer
  nb_re <- no_warn(glm_nb_tight(formula, data = data, control = TIGHT,
                                init.theta = nb$theta, start = coef(nb)), name)
  # verification 2: independent alternation, polished glm(negative.binomial)
  # and theta.ml(eps = 1e-13), from the answer
  th <- nb$theta
  for (k in 1:50) {
    g <- tight_glm(paste0(name, "_check"), formula,
                   MASS::negative.binomial(th), data)
    th_new <- as.numeric(MASS::theta.ml(g$y, fitted(g), limit = 1000, eps = 1e-13))
    done <- abs(th_new - th) <= 1e-15 * th
    th <- th_new
    if (done) break
  }
  mu <- fitted(nb)
  score <- sum(digamma(nb$theta + nb$y) - digamma(nb$theta) + log(nb$theta) + 1 -
                 log(nb$theta + mu) - (nb$y + nb$theta) / (mu + nb$theta))
  rel <- function(a, b) max(abs(a - b) / abs(b))
  check <- list(
    theta_score = sc(score),
    refit_theta_rel_change = sc(rel(nb_re$theta, nb$theta)),
    refit_coef_max_rel_change = sc(rel(coef(nb_re), coef(nb))),
    alternation_theta_rel_diff = sc(rel(th, nb$theta)),
    alternation_coef_max_rel_diff = sc(rel(coef(g), coef(nb))),
    stock_glm_nb_theta = sc(nb_stock$theta),
    stock_theta_rel_diff = sc(rel(nb_stock$theta, nb$theta)),
    stock_coef_max_rel_diff = sc(rel(coef(nb_stock), coef(nb))),
    stock_n_iter = sc(as.integer(nb_stock$iter)))
  cat(sprintf("nb   %-34s theta=%.17g iter=%d alternations=%d score=%.1e refit dtheta=%.1e dcoef=%.1e alt dtheta=%.1e dcoef=%.1e stock dtheta=%.1e\n",
              name, nb$theta, nb$iter, n_alt, score, check$refit_theta_rel_change[[1]],
              check$refit_coef_max_rel_change[[1]], check$alternation_theta_rel_diff[[1]],
              check$alternation_coef_max_rel_diff[[1]], check$stock_theta_rel_diff[[1]]))
  stopifnot(check$refit_theta_rel_change[[1]] < 1e-12,
            check$alternation_theta_rel_diff[[1]] < 1e-12,
            check$alternation_coef_max_rel_diff[[1]] < 1e-11)
  s <- summary(nb)   # summary.negbin: dispersion 1
  X <- model.matrix(nb)
  list(
    formula = sc(paste(deparse(formula, width.cutoff = 500L), collapse = " ")),
    link = sc(nb$family$link),
    X = rows(X),
    names = colnames(X),
    y = uv(nb$y),
    weights = uv(nb$prior.weights),
    offset = offset_of(nb),
    coef = uv(coef(nb)),
    se = uv(s$coefficients[, 2]),
    theta = sc(nb$theta),
    theta_se = sc(nb$SE.theta),
    loglik = sc(as.numeric(logLik(nb))),
    twologlik = sc(nb$twologlik),
    aic = sc(nb$aic),
    deviance = sc(nb$deviance),
    null_deviance = sc(nb$null.deviance),
    df_residual = sc(as.integer(nb$df.residual)),
    n_iter = sc(as.integer(nb$iter)),
    n_alternations = sc(n_alt),
    check = check)
}

negbin <- list()
negbin$quine <- make_negbin("negbin_quine", Days ~ Eth + Sex + Age + Lrn, quine)
negbin$medpar1 <- make_negbin("negbin_medpar1", los ~ codes + type3, medpar1)

## ------------------------------------------------------------ gamma shape
# gamma.shape's eps.max bounds the absolute Newton step in alpha.  For
# scotland (alpha ~ 364) the score is only known to ~1e-14 absolute, so
# alpha wanders by ~1e-10 (5e-13 relative) between steps and eps.max = 1e-12
# is never met ("iteration limit reached"); there eps.max = 1e-9 (3e-12
# relative) is used.
make_gshape <- function(name, formula, link, data, eps_max = 1e-12) {
  fit <- tight_glm(name, formula, Gamma(link), data)
  gs <- no_warn(MASS::gamma.shape(fit, it.lim = 1000, eps.max = eps_max), name)
  X <- model.matrix(fit)
  list(
    family = sc("Gamma"),
    link = sc(fit$family$link),
    formula = sc(paste(deparse(formula, width.cutoff = 500L), collapse = " ")),
    X = rows(X),
    names = colnames(X),
    y = uv(fit$y),
    weights = uv(fit$prior.weights),
    coef = uv(coef(fit)),
    shape = sc(gs$alpha),
    shape_se = sc(gs$SE),
    dispersion_pearson = sc(summary(fit)$dispersion),
    eps_max = sc(eps_max))
}

gamma_shape <- list()
gamma_shape$cancer_gamma_inverse <- make_gshape(
  "gshape_cancer_inverse", studytime ~ age + drug, "inverse", cancer)
gamma_shape$scotland_gamma_log <- make_gshape(
  "gshape_scotland_log", f_scot, "log", scotland, eps_max = 1e-9)

## ------------------------------------------------------------------ firth
# Firth / mean bias reduction: brglm2::brglmFit with type = "AS_mean".
# type is given inside brglmControl(): glm() passes `control` to the method
# unchanged when method is not "glm.fit", and ignores its `...` when control
# is supplied.
make_firth <- function(name, formula, family, data) {
  # brglmFit's starting fit uses adjusted (non-integer) responses, so the
  # family's aic() warns ("non-integer #successes in a binomial glm!",
  # "non-integer x = ..." from dpois); those warnings are expected and
  # stored, any other fails.
  bw <- collect_warn(glm(formula, family = family, data = data, weights = w_prior,
                         method = brglm2::brglmFit,
                         control = brglmControl(epsilon = 1e-12, maxit = 1000,
                                                type = "AS_mean")))
  fit <- bw$value
  if (!all(grepl("^non-integer", bw$warnings)))
    stop(name, ": unexpected warning: ", paste(bw$warnings, collapse = "; "))
  stopifnot(identical(fit$type, "AS_mean"), isTRUE(fit$converged))
  se <- summary(fit)$coefficients[, 2]
  # maximum likelihood on the same data, with R's own words
  ml <- collect_warn(glm(formula, family = family, data = data,
                         weights = w_prior, control = TIGHT))
  mlf <- ml$value
  # divergence diagnostic (the idea of detectseparation's
  # check_infinite_estimates): standard errors after maxit = 1 .. 30 IRLS
  # iterations, relative to maxit = 1; they level off for finite estimates
  # and grow without bound for infinite ones.
  se_k <- sapply(1:30, function(k) {
    f <- suppressWarnings(glm(formula, family = family, data = data,
                              weights = w_prior,
                              control = glm.control(epsilon = 1e-14, maxit = k)))
    sqrt(diag(vcov(f)))
  })
  ratio <- se_k[, 30] / se_k[, 1]
  infinite <- ratio > 1e3
  mu <- fitted(mlf)
  separated <- family$family == "binomial" && any(infinite)
  cat(sprintf("firth %-33s iter=%d ML: converged=%s iter=%d se ratio(30/1)=%s warnings=%s\n",
              name, fit$iter, mlf$converged, mlf$iter,
              paste(sprintf("%.2g", ratio), collapse = ","),
              paste(ml$warnings, collapse = " | ")))
  X <- model.matrix(fit)
  list(
    family = sc(fit$family$family),
    link = sc(fit$family$link),
    formula = sc(paste(deparse(formula, width.cutoff = 500L), collapse = " ")),
    X = rows(X),
    names = colnames(X),
    y = uv(fit$y),
    weights = uv(fit$prior.weights),
    coef = uv(coef(fit)),
    se = uv(se),
    # unpenalised, at the bias-reduced coefficients; the null deviance is the ML null model's
    deviance = sc(deviance(fit)),
    null_deviance = sc(fit$null.deviance),
    loglik = sc(as.numeric(logLik(fit))),
    aic = sc(AIC(fit)),
    converged = sc(fit$converged),
    n_iter = sc(as.integer(fit$iter)),
    type = sc(fit$type),
    warnings = bw$warnings,
    ml_coef = uv(coef(mlf)),
    ml_se = uv(sqrt(diag(vcov(mlf)))),
    ml_converged = sc(mlf$converged),
    ml_n_iter = sc(as.integer(mlf$iter)),
    ml_warnings = ml$warnings,
    ml_se_ratio = uv(ratio),
    ml_infinite = uv(infinite),
    ml_separated = sc(separated),
    ml_min_fitted_distance = if (family$family == "binomial")
      sc(min(pmin(mu, 1 - mu))) else NULL)
}

firth <- list()
firth$endometrial_logit <- make_firth("firth_endometrial", HG ~ NV + PI + EH,
                                      binomial("logit"), endometrial)
firth$lbw_logit <- make_firth("firth_lbw", f_lbw, binomial("logit"), lbw)
firth$separated_logit <- make_firth("firth_separated", y ~ x + z,
                                    binomial("logit"), separated)
firth$warpbreaks_poisson_log <- make_firth("firth_warpbreaks", breaks ~ wool + tension,
                                           poisson("log"), warpbreaks)

## ------------------------------------------------------------------ write
meta <- list(
  R = sc(R.version.string),
  sandwich = sc(as.character(packageVersion("sandwich"))),
  MASS = sc(as.character(packageVersion("MASS"))),
  brglm2 = sc(as.character(packageVersion("brglm2"))),
  platform = sc(R.version$platform),
  generator = sc("tests/data/r_inference/make_reference.R"),
  glm_control = sc("glm.control(epsilon = 1e-14, maxit = 1000), polished (README)"),
  number_format = sc("sprintf('%.17g'); NA / non-finite values are null"))

out <- list(meta = meta, cases = cases, anova = anova_out, negbin = negbin,
            gamma_shape = gamma_shape, firth = firth)
writeLines(to_json(out), "reference.json")
cat(sprintf("wrote reference.json: %d cases, %d anova, %d negbin, %d gamma_shape, %d firth, %.2f MB\n",
            length(cases), length(anova_out), length(negbin), length(gamma_shape),
            length(firth), file.size("reference.json") / 2^20))
