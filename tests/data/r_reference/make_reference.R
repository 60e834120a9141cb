# Reference results from R's glm() for GLMs with non-canonical (and a few
# canonical) links.  Run from this folder:
#
#     Rscript make_reference.R
#
# Reads the CSV files in this folder and writes reference.json.  Every fit is
# run with glm.control(epsilon = 1e-14, maxit = 1000) so it is converged to
# the optimum (up to floating point); the same model fitted with the default
# glm.control() is stored under "default_control" for comparison.
#
# Numbers are written with sprintf("%.17g") so every double round-trips
# exactly (jsonlite caps at 15 significant digits, so JSON is written by hand).

suppressPackageStartupMessages(library(MASS))

TIGHT <- glm.control(epsilon = 1e-14, maxit = 1000)
warns <- character(0)   # warnings collected by run_glm()

## ---------------------------------------------------------------- JSON writer
# sc(), to_json(): see json.R (shared with ../r_inference/make_reference.R).
source("json.R")

## ------------------------------------------------------------------ data
rd <- function(f) read.csv(f, stringsAsFactors = FALSE)

scotland <- rd("scotland.csv")
cancer <- rd("cancer.csv")
invgauss <- rd("inv_gaussian.csv")            # first 5000 rows, as statsmodels
stopifnot(nrow(invgauss) == 5000)
medpar1 <- rd("medpar1.csv")
medpar1$type3 <- as.numeric(medpar1$admitype == "type3")  # "type1|2" is the base
longley <- rd("longley.csv")
star98 <- rd("star98.csv")
star98$n_trials <- star98$NABOVE + star98$NBELOW
star98$prop <- star98$NABOVE / star98$n_trials
spector <- rd("spector.csv")
lbw <- rd("lbw.csv")
lbw$race_black <- as.numeric(lbw$race == "black")   # "white" is the base
lbw$race_other <- as.numeric(lbw$race == "other")
warpbreaks <- rd("warpbreaks.csv")
warpbreaks$wool <- factor(warpbreaks$wool, levels = c("A", "B"))
warpbreaks$tension <- factor(warpbreaks$tension, levels = c("L", "M", "H"))
insectsprays <- rd("insectsprays.csv")
insectsprays$spray <- factor(insectsprays$spray, levels = LETTERS[1:6])
quine <- rd("quine.csv")
quine$Eth <- factor(quine$Eth, levels = c("A", "N"))
quine$Sex <- factor(quine$Sex, levels = c("F", "M"))
quine$Age <- factor(quine$Age, levels = c("F0", "F1", "F2", "F3"))
quine$Lrn <- factor(quine$Lrn, levels = c("AL", "SL"))

DATA_FILES <- c(scotland = "scotland.csv", cancer = "cancer.csv",
                invgauss = "inv_gaussian.csv", medpar1 = "medpar1.csv",
                longley = "longley.csv", star98 = "star98.csv",
                spector = "spector.csv", lbw = "lbw.csv",
                warpbreaks = "warpbreaks.csv", insectsprays = "insectsprays.csv",
                quine = "quine.csv")

idx0 <- function(d) seq_len(nrow(d)) - 1L     # row index from 0

## ------------------------------------------------------------ custom link
# loglog: mu = exp(-exp(-eta)), eta = -log(-log(mu)).  Guards mirror R's own
# cloglog link (make.link("cloglog")) with the sign of eta flipped.
loglog_link <- function() {
  linkfun <- function(mu) -log(-log(mu))
  linkinv <- function(eta)
    pmax(pmin(exp(-exp(-eta)), 1 - .Machine$double.eps), .Machine$double.eps)
  mu.eta <- function(eta) {
    eta <- pmax(eta, -700)
    pmax(exp(-eta) * exp(-exp(-eta)), .Machine$double.eps)
  }
  valideta <- function(eta) TRUE
  structure(list(linkfun = linkfun, linkinv = linkinv, mu.eta = mu.eta,
                 valideta = valideta, name = "loglog"),
            class = "link-glm")
}

make_family <- function(family, link, theta = NULL) {
  lk <- if (identical(link, "loglog")) loglog_link() else link
  switch(family,
         gaussian = gaussian(link = lk),
         Gamma = Gamma(link = lk),
         inverse.gaussian = inverse.gaussian(link = lk),
         binomial = binomial(link = lk),
         poisson = poisson(link = lk),
         negative.binomial = MASS::negative.binomial(theta = theta, link = lk),
         stop("unknown family ", family))
}

## ------------------------------------------------------------------ cases
cases <- list()
skipped <- list()

mk <- function(name, data, formula, family, link, weights = NULL,
               offset = NULL, theta = NULL, start = NULL, note = NULL,
               retry_start = FALSE) {
  list(name = name, data = data, formula = formula, family = family,
       link = link, weights = weights, offset = offset, theta = theta,
       start = start, note = note, retry_start = retry_start)
}

specs <- list()
add <- function(...) specs[[length(specs) + 1L]] <<- mk(...)

f_scot <- YES ~ COUTAX + UNEMPF + MOR + ACT + GDP + AGE + COUTAX_FEMALEUNEMP
for (lk in c("inverse", "log", "identity"))
  add(paste0("scotland_gamma_", lk), "scotland", f_scot, "Gamma", lk)

f_cancer <- studytime ~ age + drug
for (lk in c("log", "identity", "inverse"))
  add(paste0("cancer_gamma_", lk), "cancer", f_cancer, "Gamma", lk)

f_ig <- xig ~ x1 + x2
for (lk in c("1/mu^2", "log", "identity", "inverse"))
  add(paste0("invgauss_ig_", c("1/mu^2" = "mu2inv", log = "log",
                               identity = "identity", inverse = "inverse")[[lk]]),
      "invgauss", f_ig, "inverse.gaussian", lk)

f_medpar <- los ~ codes + type3
for (lk in c("log", "identity"))
  add(paste0("medpar1_ig_", lk), "medpar1", f_medpar, "inverse.gaussian", lk)

f_longley <- TOTEMP ~ GNPDEFL + GNP + UNEMP + ARMED + POP + YEAR
for (lk in c("log", "inverse"))
  add(paste0("longley_gaussian_", lk), "longley", f_longley, "gaussian", lk)

f_star <- as.formula(paste("prop ~",
  paste(setdiff(names(rd("star98.csv")), c("NABOVE", "NBELOW")), collapse = " + ")))
for (lk in c("probit", "cloglog", "cauchit", "logit"))
  add(paste0("star98_binomial_", lk), "star98", f_star, "binomial", lk,
      weights = quote(n_trials))

f_spector <- GRADE ~ GPA + TUCE + PSI
f_lbw <- low ~ age + lwt + race_black + race_other + smoke + ptl + ht + ui
for (lk in c("probit", "cloglog", "cauchit", "log", "loglog")) {
  add(paste0("spector_binomial_", lk), "spector", f_spector, "binomial", lk,
      retry_start = (lk == "log"))
  add(paste0("lbw_binomial_", lk), "lbw", f_lbw, "binomial", lk,
      retry_start = (lk == "log"))
}

f_warp <- breaks ~ wool + tension
f_insect <- count ~ spray
for (lk in c("identity", "sqrt", "log")) {
  add(paste0("warpbreaks_poisson_", lk), "warpbreaks", f_warp, "poisson", lk)
  add(paste0("insectsprays_poisson_", lk), "insectsprays", f_insect, "poisson", lk)
}

# prior weights and offsets with non-canonical links
scotland$w_mod4 <- 1 + idx0(scotland) %% 4
warpbreaks$w_mod3 <- 1 + idx0(warpbreaks) %% 3
longley$off_001 <- 0.01 * idx0(longley)
add("scotland_gamma_log_weights", "scotland", f_scot, "Gamma", "log",
    weights = quote(w_mod4), note = "prior weights w = 1 + (i mod 4), i from 0")
add("warpbreaks_poisson_sqrt_weights", "warpbreaks", f_warp, "poisson", "sqrt",
    weights = quote(w_mod3), note = "prior weights w = 1 + (i mod 3), i from 0")
add("longley_gaussian_log_offset", "longley", f_longley, "gaussian", "log",
    offset = quote(off_001),
    note = "offset = 0.01 * i, i from 0; eta = X b + offset")

# negative binomial with fixed theta (MASS::negative.binomial), log link
f_quine <- Days ~ Eth + Sex + Age + Lrn
add("quine_negbin_theta1.5", "quine", f_quine, "negative.binomial", "log",
    theta = 1.5)

## ------------------------------------------------------------- fitting
run_glm <- function(s, control) {
  d <- get(s$data)
  fam <- make_family(s$family, s$link, s$theta)
  args <- list(formula = s$formula, family = fam, data = d, control = control)
  if (!is.null(s$weights)) args$weights <- d[[as.character(s$weights)]]
  if (!is.null(s$offset)) args$offset <- d[[as.character(s$offset)]]
  if (!is.null(s$start)) args$start <- s$start
  withCallingHandlers(do.call(glm, args),
                      warning = function(w) {
                        warns <<- c(warns, conditionMessage(w))
                        invokeRestart("muffleWarning")
                      })
}

rows <- function(m) { m <- as.matrix(m); dimnames(m) <- NULL; m }

# Polish.  glm's stopping rule is on the relative change of the deviance,
# which is quadratic in the coefficient error, so epsilon = 1e-14 can still
# leave coefficients ~1e-7 (relative) from the optimum when IRLS converges
# only linearly (non-canonical links).  Continue R's own IRLS one step at a
# time (glm(start = b, maxit = 1)) until the coefficients stop moving
# (max relative change <= 1e-15, or no further decrease over 5 steps once
# below 1e-10: the rounding-noise floor) or 500 steps, then refit with start = b and
# the tight control so that fit$converged is TRUE and every stored quantity
# comes from a converged glm() object.
polish <- function(s, fit, max_steps = 500L, tol = 1e-15) {
  b <- coef(fit)
  steps <- 0L
  last <- NA_real_
  hist <- numeric(0)
  for (k in seq_len(max_steps)) {
    s$start <- b
    f1 <- run_glm(s, glm.control(epsilon = 1e-14, maxit = 1))
    b_new <- coef(f1)
    last <- max(abs(b_new - b) / abs(b_new))
    hist <- c(hist, last)
    b <- b_new
    steps <- k
    if (last <= tol) break
    # rounding-noise floor: tiny steps that stopped shrinking for 5 steps
    if (k >= 10 && last < 1e-10 &&
        min(hist[(k - 4):k]) >= 0.9 * min(hist[1:(k - 5)])) break
  }
  s$start <- b
  warns <<- character(0)   # drop the "did not converge" warnings of maxit = 1
  refit <- run_glm(s, TIGHT)
  if (!isTRUE(refit$converged)) stop("polished refit did not converge: ", s$name)
  list(fit = refit, steps = steps, last = last,
       final = max(abs(coef(refit) - b) / abs(coef(refit))))
}

## glm.nb estimate of theta (tight control), then a refinement of theta to
## full accuracy: glm.nb's theta.ml() calls use eps = .Machine$double.eps^0.25,
## so its theta is the fixed point of a truncated Newton iteration.  We
## alternate theta.ml(eps = 1e-13) and a tight, polished glm fit until theta
## stops moving.
nb <- MASS::glm.nb(f_quine, data = quine, control = TIGHT)
stopifnot(isTRUE(nb$converged))
nb_sum <- summary(nb)
theta_nb <- as.numeric(nb$theta)
theta_ref <- theta_nb
for (it in 1:200) {
  s_t <- mk("nb_theta_refine", "quine", f_quine, "negative.binomial", "log",
             theta = theta_ref)
  fit_t <- polish(s_t, run_glm(s_t, TIGHT))$fit
  th_new <- as.numeric(MASS::theta.ml(quine$Days, fitted(fit_t),
                                      limit = 1000, eps = 1e-13))
  done <- abs(th_new - theta_ref) <= 1e-15 * abs(theta_ref)
  theta_ref <- th_new
  if (done) break
}
glm_nb_info <- list(
  formula = sc(deparse(f_quine)),
  call = sc("MASS::glm.nb(Days ~ Eth + Sex + Age + Lrn, data = quine, control = glm.control(epsilon = 1e-14, maxit = 1000))"),
  columns = colnames(model.matrix(nb)),
  coefficients = unname(coef(nb)),
  stderr = unname(nb_sum$coefficients[, 2]),
  theta = sc(theta_nb),
  SE_theta = sc(as.numeric(nb$SE.theta)),
  twologlik = sc(as.numeric(nb$twologlik)),
  aic = sc(as.numeric(nb$aic)),
  deviance = sc(nb$deviance),
  iter = sc(as.integer(nb$iter)),
  theta_refined = sc(theta_ref),
  theta_refined_note = sc(paste(
    "theta.ml(y, fitted, eps = 1e-13) alternated with a polished glm(negative.binomial(theta))",
    "to a fixed point; glm.nb itself uses theta.ml's default eps = 2^-13 per step")))
add("quine_negbin_thetahat", "quine", f_quine, "negative.binomial", "log",
    theta = theta_ref,
    note = "theta = refined ML estimate (see glm_nb.theta_refined); glm.nb's own theta is glm_nb.theta")


for (s in specs) {
  warns <- character(0)
  fit <- tryCatch(run_glm(s, TIGHT), error = function(e) e)
  first_error <- NULL
  if (inherits(fit, "error") && isTRUE(s$retry_start)) {
    # second attempt from a valid start: intercept log(mean(y)), slopes 0
    first_error <- conditionMessage(fit)
    d <- get(s$data)
    s$start <- c(log(mean(d[[all.vars(s$formula)[1]]])),
                 rep(0, ncol(model.matrix(s$formula, d)) - 1L))
    s$note <- "glm's default start failed; start = c(log(mean(y)), 0, ..., 0)"
    warns <- character(0)
    fit <- tryCatch(run_glm(s, TIGHT), error = function(e) e)
  }
  prefix <- if (is.null(first_error)) "" else
    sprintf("default start: error: %s; with start = c(log(mean(y)), 0, ...): ", first_error)
  if (inherits(fit, "error")) {
    msg <- paste0(prefix, "error: ", conditionMessage(fit))
    cat(sprintf("SKIP %-34s %s\n", s$name, msg))
    skipped[[s$name]] <- list(family = sc(s$family), link = sc(s$link),
                              reason = sc(msg))
    next
  }
  if (!isTRUE(fit$converged)) {
    cat(sprintf("SKIP %-34s %snot converged after %d iterations\n", s$name, prefix, fit$iter))
    skipped[[s$name]] <- list(family = sc(s$family), link = sc(s$link),
                              reason = sc(sprintf("%snot converged (iter = %d, maxit = 1000)", prefix, fit$iter)),
                              warnings = unique(warns))
    next
  }
  if (fit$boundary) {
    cat(sprintf("SKIP %-34s %sfit on the boundary of the parameter space\n", s$name, prefix))
    skipped[[s$name]] <- list(family = sc(s$family), link = sc(s$link),
                              reason = sc(sprintf("%sconverged = %s but fit$boundary is TRUE (iter = %d, max fitted = %.17g)",
                                                  prefix, fit$converged, fit$iter, max(fit$fitted.values))),
                              warnings = unique(warns))
    next
  }
  iter_tight <- fit$iter
  dev_tight <- fit$deviance
  coef_tight <- coef(fit)
  # Polish.  glm's stopping rule is on the relative change of the deviance,
  # which is quadratic in the coefficient error, so epsilon = 1e-14 can still
  # leave coefficients ~1e-7 (relative) from the optimum when IRLS converges
  # only linearly (non-canonical links).  Continue R's own IRLS one step at a
  # time (glm(start = b, maxit = 1)) until the coefficients stop moving
  # (max relative change <= 1e-15, or no further decrease over 5 steps once
# below 1e-10: the rounding-noise floor) or 500 steps, then refit with
  # start = b and the tight control so that fit$converged is TRUE and every
  # stored quantity comes from a converged glm() object.
  warns <- character(0)
  pol <- polish(s, fit)
  fit <- pol$fit
  polish_steps <- pol$steps
  polish_last <- pol$last
  polish_final <- pol$final
  tight_warns <- unique(warns)
  warns <- character(0)
  fit_def <- tryCatch(run_glm(s, glm.control()), error = function(e) e)
  def_warns <- unique(warns)
  summ <- summary(fit)
  X <- model.matrix(fit)
  if (fit$rank < ncol(X)) stop("rank deficient design in ", s$name)
  fam_name <- s$family
  res <- list(
    family = sc(fam_name),
    r_family_name = sc(fit$family$family),
    link = sc(fit$family$link),
    theta = if (is.null(s$theta)) NULL else sc(s$theta),
    formula = sc(paste(deparse(s$formula, width.cutoff = 500L), collapse = " ")),
    data = sc(DATA_FILES[[s$data]]),
    note = if (is.null(s$note)) NULL else sc(s$note),
    n = sc(nrow(X)),
    p = sc(ncol(X)),
    columns = colnames(X),
    X = rows(X),
    y = unname(fit$y),
    weights = unname(fit$prior.weights),
    offset = if (is.null(fit$offset)) NULL else unname(fit$offset),
    coefficients = unname(coef(fit)),
    stderr = unname(summ$coefficients[, 2]),
    dispersion = sc(summ$dispersion),
    deviance = sc(fit$deviance),
    null_deviance = sc(fit$null.deviance),
    df_residual = sc(as.integer(fit$df.residual)),
    df_null = sc(as.integer(fit$df.null)),
    aic = sc(fit$aic),
    loglik = sc(as.numeric(logLik(fit))),
    iter = sc(as.integer(iter_tight)),
    converged = sc(fit$converged),
    polish = list(
      steps = sc(polish_steps),
      last_step_max_rel = sc(polish_last),
      refit_iter = sc(as.integer(fit$iter)),
      refit_step_max_rel = sc(polish_final),
      coef_max_rel_change_vs_unpolished = sc(max(abs(coef(fit) - coef_tight) / abs(coef(fit)))),
      deviance_unpolished = sc(dev_tight)),
    fitted = unname(fit$fitted.values),
    linear_predictors = unname(fit$linear.predictors),
    cov_unscaled = rows(summ$cov.unscaled),
    resid_deviance = unname(residuals(fit, "deviance")),
    resid_pearson = unname(residuals(fit, "pearson")),
    resid_working = unname(residuals(fit, "working")),
    resid_response = unname(residuals(fit, "response")),
    pearson_chi2 = sc(sum(residuals(fit, "pearson")^2)),
    warnings = tight_warns
  )
  if (s$family == "negative.binomial") {
    # summary.glm estimates the dispersion (Pearson) for this family, while
    # MASS's summary.negbin and statsmodels fix it to 1: store both.
    s1 <- summary(fit, dispersion = 1)
    res$stderr_dispersion1 <- unname(s1$coefficients[, 2])
  }
  if (inherits(fit_def, "error")) {
    res$default_control <- list(error = sc(conditionMessage(fit_def)))
  } else {
    res$default_control <- list(
      coefficients = unname(coef(fit_def)),
      iter = sc(as.integer(fit_def$iter)),
      converged = sc(fit_def$converged),
      deviance = sc(fit_def$deviance),
      max_rel_coef_diff = sc(max(abs(coef(fit_def) - coef(fit)) / abs(coef(fit)))),
      max_coef_diff_in_stderr = sc(max(abs(coef(fit_def) - coef(fit)) /
                                       summ$coefficients[, 2])),
      warnings = def_warns)
  }
  cases[[s$name]] <- res
  cat(sprintf("OK   %-34s n=%5d p=%2d iter=%3d polish=%3d last=%.1e unpolished=%.1e default_iter=%3s maxrel(default)=%.3g\n",
              s$name, nrow(X), ncol(X), iter_tight, polish_steps, polish_last,
              res$polish$coef_max_rel_change_vs_unpolished[[1]],
              if (inherits(fit_def, "error")) "err" else fit_def$iter,
              if (inherits(fit_def, "error")) NA else res$default_control$max_rel_coef_diff[[1]]))
}

meta <- list(
  generator = sc("make_reference.R"),
  r_version = sc(R.version.string),
  mass_version = sc(as.character(packageVersion("MASS"))),
  platform = sc(R.version$platform),
  control = sc("glm.control(epsilon = 1e-14, maxit = 1000); default_control = glm.control()"),
  number_format = sc("sprintf('%.17g'); non-finite values are null"),
  notes = c(
    "X is R's model.matrix (intercept first); y is fit$y (proportions for binomial with trials as weights); weights are fit$prior.weights",
    "stderr = summary(fit)$coefficients[, 2]; dispersion = summary(fit)$dispersion (1 for binomial/poisson, Pearson chi2/df_residual otherwise, including negative.binomial)",
    "aic = fit$aic = family$aic(...) + 2 * rank; loglik = as.numeric(logLik(fit)) = rank (+1 for gaussian/Gamma/inverse.gaussian) - aic / 2. R's family aic plugs in the dispersion deviance/n_obs (gaussian, also adds -sum(log(weights))) or deviance/sum(weights) (Gamma, inverse.gaussian), not the Pearson estimate; negative.binomial's aic does not count theta",
    "iter = iterations of the first glm(control = glm.control(epsilon = 1e-14, maxit = 1000)) fit; the stored fit is then polished (see polish): IRLS continued one step at a time from those coefficients, then refitted with the tight control from the polished start, so converged is TRUE for the stored object",
    "cov_unscaled = summary(fit)$cov.unscaled = (X' W X)^-1 at the optimum; stderr = sqrt(dispersion * diag(cov_unscaled))"
  )
)

out <- list(meta = meta, cases = cases, skipped = skipped, glm_nb = glm_nb_info)
writeLines(to_json(out), "reference.json")
cat(sprintf("wrote reference.json: %d cases, %d skipped, %.2f MB\n",
            length(cases), length(skipped), file.size("reference.json") / 2^20))
