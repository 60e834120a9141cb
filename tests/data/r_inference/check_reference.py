"""Cross-check r_inference/reference.json (R) against statsmodels and numpy.

Run with the project venv, from anywhere:

    python tests/data/r_inference/check_reference.py [--strict]

1. statsmodels: HC0 of cases warpbreaks_poisson_log and lbw_binomial_logit
   equals GLM(y, X, family).fit(cov_type="HC0").cov_params(); R's vcovCL
   equals statsmodels' cov_type="cluster" with use_correction=False times
   G/(G-1); the negbin quine (and medpar1) coefficients equal statsmodels'
   GLM NegativeBinomial(alpha = 1/theta) with alpha fixed, and their
   standard errors (scale 1) equal summary.negbin's.  For information it
   also fits statsmodels' discrete NegativeBinomial (NB2, alpha estimated).
2. numpy, from the JSON alone: HC0..HC3, CL, hat values, predict se
   (link: sqrt(x' V x); response: delta method) for every case, to document
   the formulas that sandwich and predict.glm use.

Covariance differences are max_ij |A_ij - B_ij| / sqrt(B_ii B_jj).
--strict exits non-zero when a check exceeds its tolerance.
"""

import json
import os
import sys
import warnings

import numpy as np
import statsmodels.api as sm
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))


def load():
    with open(os.path.join(HERE, "reference.json")) as f:
        return json.load(f)


def arr(x):
    return np.asarray(x, dtype=float)


def scaled_diff(a, b):
    a, b = arr(a), arr(b)
    s = np.sqrt(np.diag(b))
    return float(np.max(np.abs(a - b) / np.outer(s, s)))


def rel(a, b):
    a, b = arr(a), arr(b)
    return float(np.max(np.abs(a - b) / np.abs(b)))


FAILS = []


def report(label, value, tol):
    ok = value <= tol
    if not ok:
        FAILS.append(label)
    print(f"  {label:<58s} {value:9.2e}  (tol {tol:.0e}) {'ok' if ok else 'FAIL'}")


# --------------------------------------------------------------- link/variance
def link_inv_and_deriv(link, eta):
    if link == "log":
        mu = np.exp(eta)
        return mu, mu
    if link == "logit":
        mu = 1 / (1 + np.exp(-eta))
        return mu, mu * (1 - mu)
    if link == "probit":
        return stats.norm.cdf(eta), stats.norm.pdf(eta)
    if link == "inverse":
        return 1 / eta, -1 / eta**2
    if link == "identity":
        return eta, np.ones_like(eta)
    raise ValueError(link)


def variance(family, mu):
    return {"poisson": mu, "binomial": mu * (1 - mu), "Gamma": mu**2, "gaussian": np.ones_like(mu)}[
        family
    ]


def numpy_sandwich(c):
    """HC0..HC3, CL and hat values from the JSON's data and R's coef."""
    X, y, w, off = arr(c["X"]), arr(c["y"]), arr(c["weights"]), arr(c["offset"])
    b = arr(c["coef"])
    n, p = X.shape
    eta = X @ b + off
    mu, dmu = link_inv_and_deriv(c["link"], eta)
    W = w * dmu**2 / variance(c["family"], mu)  # working weights
    u = w * (y - mu) * dmu / variance(c["family"], mu)  # = W * working resid
    # (X'WX)^-1 by QR of sqrt(W) X (as R does)
    q, r = np.linalg.qr(np.sqrt(W)[:, None] * X)
    rinv = np.linalg.inv(r)
    bread = rinv @ rinv.T
    h = np.sum(q**2, axis=1)
    out = {"hat": h}

    def sw(scale):
        m = X * (u * scale)[:, None]
        return bread @ (m.T @ m) @ bread

    out["HC0"] = sw(np.ones(n))
    out["HC1"] = out["HC0"] * n / (n - p)
    out["HC2"] = sw(1 / np.sqrt(1 - h))
    out["HC3"] = sw(1 / (1 - h))
    g = np.asarray(c["cluster"])
    G = len(np.unique(g))
    S = np.zeros((G, p))
    np.add.at(S, g, X * u[:, None])
    out["CL"] = bread @ (S.T @ S) @ bread * G / (G - 1)
    return out


def check_numpy(ref):
    print("numpy recomputation from the JSON (R's coef, X, y, weights, offset)")
    for name, c in ref["cases"].items():
        mine = numpy_sandwich(c)
        noise = c["sandwich_noise"]
        tol = max(1e-10, 1e3 * noise)
        for k in ("HC0", "HC1", "HC2", "HC3", "CL"):
            report(f"{name} {k}", scaled_diff(mine[k], c[k]), tol)
        report(f"{name} hat", float(np.max(np.abs(mine["hat"] - arr(c["hat"])))), 1e-12)
        # predict: link se = sqrt(x' vcov x); response se = link se * |dmu/deta|
        nX, V = arr(c["newX"]), arr(c["vcov"])
        pl = nX @ arr(c["coef"]) + arr(c["new_offset"])
        se = np.sqrt(np.einsum("ij,jk,ik->i", nX, V, nX))
        mu, dmu = link_inv_and_deriv(c["link"], pl)
        pr = c["predict"]
        report(
            f"{name} predict link / response",
            max(rel(pl, pr["link"]), rel(mu, pr["response"])),
            1e-11,
        )
        report(
            f"{name} predict link_se / response_se (delta)",
            max(rel(se, pr["link_se"]), rel(se * np.abs(dmu), pr["response_se"])),
            max(1e-11, 1e3 * noise),
        )


# --------------------------------------------------------------- statsmodels
SM_FAMILY = {"poisson": sm.families.Poisson, "binomial": sm.families.Binomial}


def sm_glm(c):
    fam = SM_FAMILY[c["family"]]()
    return sm.GLM(
        arr(c["y"]), arr(c["X"]), family=fam, var_weights=arr(c["weights"]), offset=arr(c["offset"])
    )


def check_statsmodels(ref):
    print("statsmodels GLM")
    for name in ("warpbreaks_poisson_log", "lbw_binomial_logit"):
        c = ref["cases"][name]
        mod = sm_glm(c)
        r = mod.fit(tol=1e-13, maxiter=1000, cov_type="HC0")
        report(f"{name} coef vs statsmodels", rel(r.params, c["coef"]), 1e-10)
        report(
            f"{name} HC0 vs statsmodels cov_type='HC0'", scaled_diff(r.cov_params(), c["HC0"]), 1e-8
        )
        G = c["n_clusters"]
        g = np.asarray(c["cluster"])
        rc = mod.fit(
            tol=1e-13,
            maxiter=1000,
            cov_type="cluster",
            cov_kwds={"groups": g, "use_correction": False},
        )
        report(
            f"{name} CL vs statsmodels cluster(no corr.) * G/(G-1)",
            scaled_diff(rc.cov_params() * G / (G - 1), c["CL"]),
            1e-8,
        )
        rn = mod.fit(tol=1e-13, maxiter=1000)
        report(
            f"{name} vcov vs statsmodels nonrobust", scaled_diff(rn.cov_params(), c["vcov"]), 1e-8
        )

    for name, c in ref["negbin"].items():
        X, y = arr(c["X"]), arr(c["y"])
        fam = sm.families.NegativeBinomial(alpha=1 / c["theta"])
        r = sm.GLM(y, X, family=fam).fit(tol=1e-14, maxiter=1000)
        # statsmodels' IRLS stops on the deviance change: restart it from
        # its own answer until the coefficients stop moving
        for _ in range(50):
            r2 = sm.GLM(y, X, family=fam).fit(start_params=r.params, tol=1e-14, maxiter=1000)
            done = rel(r2.params, r.params) < 1e-15
            r = r2
            if done:
                break
        report(
            f"negbin {name} coef vs statsmodels GLM NB2(alpha=1/theta)",
            rel(r.params, c["coef"]),
            1e-10,
        )
        report(f"negbin {name} se vs statsmodels GLM NB2 (scale 1)", rel(r.bse, c["se"]), 1e-9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = sm.NegativeBinomial(y, X, loglike_method="nb2").fit(
                start_params=np.append(c["coef"], 1 / c["theta"]),
                method="newton",
                maxiter=100,
                tol=1e-14,
                disp=False,
            )
        print(
            f"  info: negbin {name} discrete NB2 MLE: alpha rel diff vs 1/theta "
            f"{abs(d.params[-1] * c['theta'] - 1):.2e}, coef {rel(d.params[:-1], c['coef']):.2e}, "
            f"loglik diff {abs(d.llf - c['loglik']):.2e}"
        )


def main():
    ref = load()
    import statsmodels

    print(
        f"R: {ref['meta']['R']}, sandwich {ref['meta']['sandwich']}, MASS {ref['meta']['MASS']}, "
        f"brglm2 {ref['meta']['brglm2']}"
    )
    print(f"statsmodels {statsmodels.__version__}, numpy {np.__version__}")
    check_statsmodels(ref)
    check_numpy(ref)
    print(f"{len(FAILS)} check(s) over tolerance" + (": " + ", ".join(FAILS) if FAILS else ""))
    if "--strict" in sys.argv and FAILS:
        sys.exit(1)


if __name__ == "__main__":
    main()
