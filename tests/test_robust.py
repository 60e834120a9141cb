"""Sandwich and cluster-robust covariances (``fit_glm(cov_type=...)``) against R's
``sandwich::vcovHC`` / ``vcovCL`` (tests/data/r_inference) and statsmodels.

Covariances are compared on the scale of the standard errors, ``max |A - B| / sqrt(B_ii B_jj)``
(entries of an ill-conditioned covariance are only known on that scale), at 1e-6, the issue's
tolerance; the fits are converged to ``tol=1e-12`` so that R's and glmjax's optima agree to
rounding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm
from helpers import fit_r_case, r_inference
from numpy.testing import assert_allclose

import glmjax as gj

R_KEY = {"cluster": "CL"}
# (case, cov_type): canonical and non-canonical links, estimated dispersion, prior weights
# with an offset; each pair is one compile, so only these
CASES = [
    ("warpbreaks_poisson_log", "HC0"),
    ("warpbreaks_poisson_log", "HC3"),
    ("warpbreaks_poisson_log", "cluster"),
    ("cancer_gamma_inverse", "HC1"),
    ("cancer_gamma_inverse", "HC2"),
    ("insectsprays_poisson_log_wo", "cluster"),
    ("insectsprays_poisson_log_wo", "HC3"),
]


def scaled_difference(A, B):
    A, B = np.asarray(A), np.asarray(B)
    s = np.sqrt(np.diag(B))
    return np.max(np.abs(A - B) / np.outer(s, s))


@pytest.fixture(scope="module")
def fits():
    out = {}
    for name, cov_type in CASES:
        case = r_inference()["cases"][name]
        clusters = np.asarray(case["cluster"]) if cov_type == "cluster" else None
        out[name, cov_type] = fit_r_case(case, cov_type=cov_type, clusters=clusters, tol=1e-12)
    return out


@pytest.mark.parametrize("name, cov_type", CASES)
def test_sandwich_against_R(fits, name, cov_type):
    case, fit = r_inference()["cases"][name], fits[name, cov_type]
    V = np.asarray(case[R_KEY.get(cov_type, cov_type)])
    assert fit.cov_type == cov_type
    assert scaled_difference(fit.cov, V) < 1e-6
    assert_allclose(fit.stderr, np.sqrt(np.diag(V)), rtol=1e-6)
    # the coefficient table and intervals follow the sandwich (t on df_resid for the Gamma)
    lower, upper = fit.conf_int(0.05)
    assert_allclose(upper - lower, 2 * fit.critical_value(0.05) * np.sqrt(np.diag(V)), rtol=1e-6)
    assert_allclose(fit.zvalues, np.asarray(case["coef"]) / np.sqrt(np.diag(V)), rtol=1e-6)
    assert f"Covariance:         {cov_type}" in str(fit.summary())


def test_HC0_against_statsmodels(fits):
    # statsmodels agrees with R for HC0 (its GLM returns HC0 for HC1-HC3 too: not compared)
    case = r_inference()["cases"]["warpbreaks_poisson_log"]
    ref = sm.GLM(np.asarray(case["y"]), np.asarray(case["X"]), family=sm.families.Poisson())
    ref = ref.fit(tol=1e-13, cov_type="HC0")
    fit = fits["warpbreaks_poisson_log", "HC0"]
    assert scaled_difference(fit.cov, ref.cov_params()) < 1e-6
    assert_allclose(fit.pvalues, ref.pvalues, rtol=1e-6)


def test_cluster_labels_any_values_and_traced(fits):
    # labels are mapped to 0..G-1: strings give R's vcovCL; under jit (traced labels) the
    # clusters are counted in the graph
    case = r_inference()["cases"]["warpbreaks_poisson_log"]
    X, y = np.asarray(case["X"]), np.asarray(case["y"])
    labels = np.asarray(case["cluster"])
    named = gj.fit_glm(X, y, gj.Poisson(), cov_type="cluster",
                       clusters=np.array([f"g{g}" for g in labels]), tol=1e-12)  # fmt: skip
    assert_allclose(named.cov, fits["warpbreaks_poisson_log", "cluster"].cov, rtol=1e-12)

    @jax.jit
    def fit(labels):
        return gj.fit_glm(X, y, gj.Poisson(), cov_type="cluster", clusters=labels, tol=1e-12)

    traced = fit(jnp.asarray(10 * labels - 3))
    assert_allclose(traced.cov, np.asarray(case["CL"]), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", ["warpbreaks_poisson_log", "insectsprays_poisson_log_wo"])
def test_clusters_spanning_chunks_against_R(name):
    """A cluster's scores are summed over every chunk of rows before the meat's product: in
    memory with small chunks (`chunk_size`), and streamed, labels read with the chunks, as an
    array beside array chunks and as a list of label chunks beside a list of chunks."""
    case = r_inference()["cases"][name]
    V = np.asarray(case["CL"])
    labels = np.asarray(case["cluster"])
    chunked = fit_r_case(case, cov_type="cluster", clusters=labels, tol=1e-12, chunk_size=7)
    assert scaled_difference(chunked.cov, V) < 1e-6
    arrays = [np.asarray(case[k], float) for k in ("X", "y", "weights")]
    if case["offset"] is not None:
        arrays.append(np.asarray(case["offset"], float))
    kwargs = dict(link=case["link"], cov_type="cluster", tol=1e-12, progress=False)
    streamed = gj.fit_glm_streaming(tuple(arrays), gj.Poisson(), clusters=labels, chunk_rows=10,
                                    **kwargs)  # fmt: skip
    assert streamed.cov_type == "cluster"
    assert scaled_difference(streamed.cov, V) < 1e-6
    cuts = [(0, 30), (30, 47), (47, len(labels))]  # uneven chunks; clusters cross them
    listed = gj.fit_glm_streaming([tuple(a[i:j] for a in arrays) for i, j in cuts], gj.Poisson(),
                                  clusters=[labels[i:j] for i, j in cuts], **kwargs)  # fmt: skip
    assert scaled_difference(listed.cov, V) < 1e-6


def test_streamed_clusters_bad_input():
    X, y = np.c_[np.ones(6), np.arange(6.0)], np.array([0.0, 1, 0, 2, 1, 3])
    with pytest.raises(ValueError, match=r"`clusters` must be an array of shape \(6,\)"):
        gj.fit_glm_streaming((X, y), gj.Poisson(), cov_type="cluster", clusters=np.arange(5))
    with pytest.raises(ValueError, match="at least 2 clusters"):
        gj.fit_glm_streaming((X, y), gj.Poisson(), cov_type="cluster", clusters=np.zeros(6))
    with pytest.raises(ValueError, match="`clusters` must be given"):
        gj.fit_glm_streaming((X, y), gj.Poisson(), clusters=np.arange(6))
    chunks = [(X[:3], y[:3]), (X[3:], y[3:])]
    with pytest.raises(ValueError, match="labels for 1 chunks"):
        gj.fit_glm_streaming(chunks, gj.Poisson(), cov_type="cluster", clusters=[np.arange(3)],
                             progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"chunk 1: `clusters` has shape \(2,\)"):
        gj.fit_glm_streaming(chunks, gj.Poisson(), cov_type="cluster",
                             clusters=[np.arange(3), np.arange(2)], progress=False)  # fmt: skip


def test_robust_bad_input():
    X, y = gj.add_intercept(np.arange(6.0)[:, None]), np.array([0, 1, 0, 2, 1, 3])
    with pytest.raises(ValueError, match="`cov_type`"):
        gj.fit_glm(X, y, gj.Poisson(), cov_type="HC4")
    with pytest.raises(ValueError, match="`clusters` must have shape"):
        gj.fit_glm(X, y, gj.Poisson(), cov_type="cluster", clusters=np.arange(5))
    with pytest.raises(ValueError, match="at least 2 clusters"):
        gj.fit_glm(X, y, gj.Poisson(), cov_type="cluster", clusters=np.zeros(6))
    with pytest.raises(ValueError, match="`clusters` must be given"):
        gj.fit_glm(X, y, gj.Poisson(), clusters=np.arange(6))
    with pytest.raises(ValueError, match="covariance=True"):
        gj.fit_glm(X, y, gj.Poisson(), cov_type="HC0", covariance=False)
    with pytest.raises(ValueError, match="scalar families"):
        gj.fit_glm(X, y, gj.Categorical(4), cov_type="HC3")
