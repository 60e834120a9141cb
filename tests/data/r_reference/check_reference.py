"""Cross-check reference.json (R's glm) against statsmodels' GLM.

Run from anywhere with the project venv:
    python tests/data/r_reference/check_reference.py

For every case whose family and link statsmodels supports, fit
statsmodels.api.GLM(y, X, family, var_weights=weights, offset=offset)
.fit(tol=1e-13, maxiter=1000) on R's own design matrix and response, and
print the max relative difference of coefficients and standard errors versus
R.  To tell which side is closer to the optimum, it also prints the size of
one Newton step (statsmodels' score and observed Hessian,
max |step_j| / |b_j|) taken from R's coefficients and from statsmodels'.
statsmodels' IRLS also stops on the change of the deviance, so it too can
stop ~1e-7 short of the optimum; the "polished" columns restart statsmodels'
IRLS from its own solution (start_params = previous params) until its
coefficients stop moving, and compare again.  The negative binomial cases are compared
with R's dispersion-1 standard errors ("stderr_dispersion1"), since statsmodels fixes
scale = 1 there.
Pass --strict to exit non-zero if any polished difference exceeds 1e-9.
"""

import json
import os
import sys
import warnings

import numpy as np
import statsmodels.api as sm

HERE = os.path.dirname(os.path.abspath(__file__))
L = sm.families.links

LINKS = {
    "identity": L.Identity,
    "log": L.Log,
    "inverse": L.InversePower,
    "1/mu^2": L.InverseSquared,
    "logit": L.Logit,
    "probit": L.Probit,
    "cloglog": L.CLogLog,
    "cauchit": L.Cauchy,
    "loglog": L.LogLog,
    "sqrt": L.Sqrt,
}


def make_family(case):
    link = LINKS[case["link"]]()
    fam = case["family"]
    if fam == "gaussian":
        return sm.families.Gaussian(link=link)
    if fam == "Gamma":
        return sm.families.Gamma(link=link)
    if fam == "inverse.gaussian":
        return sm.families.InverseGaussian(link=link)
    if fam == "binomial":
        return sm.families.Binomial(link=link)
    if fam == "poisson":
        return sm.families.Poisson(link=link)
    if fam == "negative.binomial":
        return sm.families.NegativeBinomial(alpha=1.0 / case["theta"], link=link)
    raise KeyError(fam)


def maxrel(a, b):
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def newton_step(mod, params, scale):
    """max_j |delta_j| / |b_j| for one Newton step from params."""
    b = np.asarray(params, float)
    g = mod.score(b, scale=scale)
    H = mod.hessian(b, scale=scale)
    delta = np.linalg.solve(H, -g)
    return float(np.max(np.abs(delta) / np.abs(b)))


def main():
    strict = "--strict" in sys.argv
    with open(os.path.join(HERE, "reference.json")) as f:
        ref = json.load(f)
    print(f"R: {ref['meta']['r_version']}")
    print(f"statsmodels {sm.__version__}, numpy {np.__version__}")
    print(
        f"{'case':34s} {'n':>5s} {'p':>3s} {'coef':>9s} {'stderr':>9s} "
        f"{'deviance':>9s} {'sm iter':>7s} {'R step':>9s} {'sm step':>9s} "
        f"{'pol coef':>9s} {'pol se':>9s}"
    )
    worst = 0.0
    worst_pol = 0.0
    for name, c in ref["cases"].items():
        try:
            family = make_family(c)
        except KeyError:
            print(f"{name:34s} not supported by statsmodels")
            continue
        X = np.asarray(c["X"], float)
        y = np.asarray(c["y"], float)
        w = np.asarray(c["weights"], float)
        off = None if c["offset"] is None else np.asarray(c["offset"], float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = sm.GLM(y, X, family=family, var_weights=w, offset=off)
            try:
                res = mod.fit(tol=1e-13, maxiter=1000)
            except Exception as e:  # noqa: BLE001
                print(f"{name:34s} statsmodels failed: {e}")
                continue
        se_ref = c.get("stderr_dispersion1", c["stderr"])
        dc = maxrel(res.params, c["coefficients"])
        ds = maxrel(res.bse, se_ref)
        dd = abs(res.deviance - c["deviance"]) / abs(c["deviance"])
        worst = max(worst, dc, ds)
        iters = res.fit_history.get("iteration", "?")
        step_r = newton_step(mod, c["coefficients"], res.scale)
        step_sm = newton_step(mod, res.params, res.scale)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pol = res
            for _ in range(50):
                new = mod.fit(start_params=pol.params, tol=1e-13, maxiter=1000)
                moved = maxrel(new.params, pol.params)
                pol = new
                if moved <= 1e-15:
                    break
        pc = maxrel(pol.params, c["coefficients"])
        ps = maxrel(pol.bse, se_ref)
        worst_pol = max(worst_pol, pc, ps)
        print(
            f"{name:34s} {c['n']:5d} {c['p']:3d} {dc:9.2e} {ds:9.2e} "
            f"{dd:9.2e} {iters!s:>7s} {step_r:9.2e} {step_sm:9.2e} "
            f"{pc:9.2e} {ps:9.2e}"
        )
    print(f"worst max relative difference (coef, stderr): {worst:.2e}")
    print(f"worst after polishing statsmodels' fit:        {worst_pol:.2e}")
    if strict and worst_pol > 1e-9:
        sys.exit(1)


if __name__ == "__main__":
    main()
