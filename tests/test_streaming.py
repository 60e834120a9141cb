"""Streaming (out-of-core) fits equal the in-memory fit — the same solver, per-row quantities and
inference, fed by passes over chunks; one compiled function per chunk size; errors name the
chunk."""

import jax
import numpy as np
import pytest
import statsmodels.api as sm

import glmjax as gj

_CHUNK = 2048


def _design(rng, n, p):
    return np.c_[np.ones(n), rng.normal(size=(n, p - 1))]


def _memmaps(tmp_path, X, y):
    out = []
    for name, a in [("X", X), ("y", y)]:
        mm = np.lib.format.open_memmap(
            tmp_path / f"{name}.npy", mode="w+", dtype=a.dtype, shape=a.shape
        )
        mm[:] = a
        mm.flush()
        del mm
        out.append(np.load(tmp_path / f"{name}.npy", mmap_mode="r"))
    return tuple(out)


def test_memmap_poisson_equals_in_memory_fit(tmp_path):
    rng = np.random.default_rng(0)
    n, p = 10_007, 5  # 4 full chunks and a short last one
    X = _design(rng, n, p)
    y = rng.poisson(np.exp(X @ (0.3 * rng.normal(size=p)))).astype(float)
    X_mm, y_mm = _memmaps(tmp_path, X, y)
    assert isinstance(X_mm, np.memmap)
    fit = gj.fit_glm_streaming(
        (X_mm, y_mm), gj.Poisson(), l2=1e-3, chunk_rows=_CHUNK, tol=1e-12, progress=False
    )
    ref = gj.fit_glm(X, y, gj.Poisson(), l2=1e-3, tol=1e-12)
    assert bool(fit.converged)
    assert int(fit.nobs) == n
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fit.stderr, ref.stderr, rtol=1e-9)
    _check_inference(fit, ref)
    # the same solver: the same iterations and evaluations, plus two passes for the start (its
    # sums, then the choice between least squares and zero)
    assert int(fit.n_iter) == int(ref.n_iter)
    assert int(fit.n_evals) == int(ref.n_evals) + 2


def test_generator_factory_with_weights_and_offset_bernoulli():
    rng = np.random.default_rng(1)
    n, p = 5_000, 4
    X = _design(rng, n, p)
    offset = 0.2 * rng.normal(size=n)
    weights = rng.integers(0, 3, size=n).astype(float)  # zero weights included
    y = rng.binomial(1, 1 / (1 + np.exp(-(X @ np.array([-0.5, 1.0, -1.0, 0.5]) + offset)))).astype(
        float
    )
    # uneven chunk sizes, none above the first
    bounds = [0, 1500, 2600, 4100, 5000]

    def chunks():
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            yield X[a:b], y[a:b], weights[a:b], offset[a:b]

    fit = gj.fit_glm_streaming(chunks, gj.Bernoulli(), tol=1e-12, progress=False)
    ref = sm.GLM(y, X, family=sm.families.Binomial(), var_weights=weights, offset=offset)
    ref = ref.fit(tol=1e-14)
    np.testing.assert_allclose(fit.coef, ref.params, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(fit.stderr, ref.bse, rtol=1e-8)
    assert int(fit.nobs) == int(np.sum(weights > 0))
    np.testing.assert_allclose(fit.deviance, ref.deviance, rtol=1e-10)
    _check_inference(fit, gj.fit_glm(X, y, gj.Bernoulli(), weights=weights, offset=offset))


def test_list_of_chunks_gaussian_is_least_squares_with_estimated_dispersion():
    rng = np.random.default_rng(2)
    n, p = 3_000, 3
    X = _design(rng, n, p)
    y = X @ np.array([1.0, 2.0, -1.0]) + 0.7 * rng.normal(size=n)
    chunks = [(X[a : a + 1000], y[a : a + 1000]) for a in range(0, n, 1000)]
    fit = gj.fit_glm_streaming(chunks, gj.Gaussian(), tol=1e-12, progress=False)
    # ordinary least squares in closed form: sigma^2 = RSS / (n - p), cov = sigma^2 (X^T X)^-1
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    sigma2 = np.sum((y - X @ beta) ** 2) / (n - p)
    np.testing.assert_allclose(fit.coef, beta, rtol=1e-10)
    np.testing.assert_allclose(fit.scale, sigma2, rtol=1e-10)
    np.testing.assert_allclose(
        fit.stderr, np.sqrt(sigma2 * np.diag(np.linalg.inv(X.T @ X))), rtol=1e-9
    )
    # the Gaussian log-likelihood at the maximum-likelihood variance RSS / n; p + 1 parameters
    rss = np.sum((y - X @ beta) ** 2)
    loglik = -0.5 * n * (np.log(2 * np.pi * rss / n) + 1)
    np.testing.assert_allclose(fit.deviance, rss, rtol=1e-10)
    np.testing.assert_allclose(fit.loglik, loglik, rtol=1e-12)
    np.testing.assert_allclose(fit.aic, -2 * loglik + 2 * (p + 1), rtol=1e-12)
    np.testing.assert_allclose(fit.bic, -2 * loglik + np.log(n) * (p + 1), rtol=1e-12)


def test_generator_gamma_with_weights_equals_in_memory_fit():
    """Gamma's log-likelihood needs the shape sum(w) / deviance of all rows: a second pass."""
    rng = np.random.default_rng(4)
    n, p = 4_000, 3
    X = _design(rng, n, p)
    mu = np.exp(X @ np.array([0.5, 0.3, -0.2]))
    y = rng.gamma(2.0, mu / 2.0)
    weights = rng.uniform(0.5, 2.0, size=n)
    family = gj.Gamma(1.0)

    def chunks():
        for a in range(0, n, 1500):
            yield X[a : a + 1500], y[a : a + 1500], weights[a : a + 1500]

    fit = gj.fit_glm_streaming(chunks, family, tol=1e-12, progress=False)
    ref = gj.fit_glm(X, y, family, weights=weights, tol=1e-12)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-10)
    _check_inference(fit, ref)


def test_sandwich_streams_like_in_memory():
    """HC3 needs the bread before its pass over the rows (the hat values): one pass more."""
    rng = np.random.default_rng(5)
    n = 3_000
    X = _design(rng, n, 3)
    y = rng.poisson(np.exp(X @ np.array([0.2, 0.4, -0.3])) * rng.gamma(2.0, 0.5, size=n))
    chunks = [(X[a : a + 1000], y[a : a + 1000]) for a in range(0, n, 1000)]
    fit = gj.fit_glm_streaming(chunks, gj.Poisson(), cov_type="HC3", tol=1e-12, progress=False)
    ref = gj.fit_glm(X, y, gj.Poisson(), cov_type="HC3", tol=1e-12)
    assert fit.cov_type == "HC3"
    np.testing.assert_allclose(fit.cov, ref.cov, rtol=1e-10)
    # overdispersed counts: the sandwich's errors exceed the model's
    plain = gj.fit_glm(X, y, gj.Poisson(), tol=1e-12)
    assert np.all(np.asarray(fit.stderr) > 1.1 * np.asarray(plain.stderr))


def _check_inference(fit, ref):
    """Deviance, null deviance, log-likelihood, AIC, BIC and dispersion of a streaming fit equal
    `fit_glm`'s (which match R's)."""
    for name in ("deviance", "null_deviance", "loglik", "aic", "bic", "scale", "df_resid"):
        np.testing.assert_allclose(getattr(fit, name), getattr(ref, name), rtol=1e-10)


def test_each_chunk_shape_compiles_once(tmp_path):
    rng = np.random.default_rng(3)
    p = 4
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)

    def fit(n):
        X = _design(rng, n, p)
        y = rng.poisson(np.exp(0.2 * X[:, 1])).astype(float)
        return gj.fit_glm_streaming((X, y), gj.Poisson(), chunk_rows=_CHUNK, progress=False)

    fit(3 * _CHUNK + 17)
    assert compiles, "the listener saw no compilation at all: the check below would be vacuous"
    compiles.clear()
    # other row counts, other short last chunks (and more chunks): nothing new to compile
    fit(5 * _CHUNK + 999)
    fit(2 * _CHUNK)
    assert compiles == []


def test_bad_sources():
    X, y = np.ones((10, 1)), np.ones(10)
    with pytest.raises(ValueError, match="one-shot iterator"):
        gj.fit_glm_streaming(iter([(X, y)]), gj.Poisson(), progress=False)
    with pytest.raises(ValueError, match="more than `chunk_rows`"):
        gj.fit_glm_streaming([(X[:5], y[:5]), (X, y)], gj.Poisson(), progress=False)
    with pytest.raises(ValueError, match="`y` has shape"):
        gj.fit_glm_streaming([(X, y[:3])], gj.Poisson(), progress=False)
    with pytest.raises(ValueError, match="`method`"):
        gj.fit_glm_streaming((X, y), gj.Poisson(), method="newton-cg", progress=False)
    # chunks are validated as fit_glm's inputs, and the error names the chunk
    with pytest.raises(ValueError, match="chunk 1: `y` has 10 value"):
        gj.fit_glm_streaming([(X, y), (X, -y)], gj.Poisson(), progress=False)
    with pytest.raises(ValueError, match="chunk 2: `X` contains 1 NaN"):
        bad = X.copy()
        bad[3, 0] = np.nan
        gj.fit_glm_streaming([(X, y), (X, y), (bad, y)], gj.Poisson(), progress=False)
    with pytest.raises(ValueError, match="chunk 1: X has 2 columns, the first chunk has 1"):
        gj.fit_glm_streaming([(X, y), (np.ones((10, 2)), y)], gj.Poisson(), progress=False)


@pytest.mark.parametrize("minimal", [True, False])
def test_list_of_chunks_softmax_equals_in_memory_fit(minimal):
    """Categorical in both parametrisations; the over-parametrised one with the ridge on the slopes
    only (a null direction per unpenalised row, handled as `fit_glm`'s Newton handles it)."""
    rng = np.random.default_rng(5)
    n, p, k = 3_000, 4, 3
    X = _design(rng, n, p)
    logits = X @ rng.normal(size=(p, k))
    y = np.cumsum(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 1) < rng.random((n, 1))
    y = np.minimum(y.sum(1), k - 1)
    family = gj.Categorical(k, minimal=minimal)
    l2 = np.zeros((p, family.natural_dim))
    l2[1:] = 1e-3
    chunks = [(X[i : i + 1000], y[i : i + 1000]) for i in range(0, n, 1000)]
    fit = gj.fit_glm_streaming(chunks, family, l2=l2, tol=1e-12, progress=False)
    ref = gj.fit_glm(X, y, family, l2=l2, tol=1e-12)
    assert bool(fit.converged)
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(fit.stderr, ref.stderr, rtol=1e-8)
    np.testing.assert_allclose(fit.objective, ref.objective, rtol=1e-13)
    _check_inference(fit, ref)


@pytest.mark.parametrize("method", ["irls", "lbfgs"])
def test_other_solvers_and_a_link_stream_like_in_memory(method):
    """The streaming loop runs any solver whose descent needs only the evaluations; a probit link
    with an offset (whose null model is refitted by the same loop, reading no X)."""
    rng = np.random.default_rng(6)
    n = 3_000
    X = _design(rng, n, 3)
    offset = 0.3 * rng.normal(size=n)
    y = (X @ np.array([0.2, 0.8, -0.5]) + offset + rng.normal(size=n) > 0).astype(float)
    chunks = (X, y, np.ones(n), offset)
    fit = gj.fit_glm_streaming(chunks, gj.Bernoulli(), link="probit", method=method, tol=1e-10,
                               chunk_rows=1024, progress=False)  # fmt: skip
    ref = gj.fit_glm(X, y, gj.Bernoulli(), link="probit", offset=offset, method=method, tol=1e-10)
    assert int(fit.result) == int(ref.result) == gj.ResultCode.successful
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-9)
    np.testing.assert_allclose(fit.stderr, ref.stderr, rtol=1e-8)
    _check_inference(fit, ref)
    assert int(fit.n_iter) == int(ref.n_iter)
