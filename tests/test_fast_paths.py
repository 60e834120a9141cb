"""The speed work's shortcuts give the answers of the slow paths: `method="auto"`, the input
conversion, `rare_cond` under vmap, the covariance by Cholesky, the Hessian's chunking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glmjax as gj
from glmjax import links
from glmjax._batching import rare_cond
from glmjax._inference import covariance
from glmjax._objective import GLMObjective, RowLikelihood
from glmjax._solver import Needs, solve_newton
from glmjax._validation import to_device


@pytest.mark.parametrize(
    ("shape", "method"),
    [
        ((1_000_000, 21, None), "newton"),  # logistic/Poisson: a Hessian is 10.5 products
        ((100_000, 33, 8), "newton-cg"),  # softmax: 74 products, 7.8e8 flops
        ((1_438, 65, 10), "newton-cg"),  # digits: 179 products, 6.7e8 flops
        ((100, 65, 10), "newton"),  # as costly per row, but 4.6e7 flops in all
        ((10_000, 80, None), "newton"),  # a scalar family: 40 products, not more
        ((10_000, 100, None), "newton-cg"),  # 50 products, 2e8 flops
        ((100, 200, None), "newton"),  # 100 products, but 8e6 flops
    ],
)
def test_auto_method_follows_the_cost_model(shape, method):
    assert gj.solvers.auto_method(*shape) == method


def test_auto_fit_equals_the_newton_fit_where_it_chooses_newton_cg():
    rng = np.random.default_rng(0)
    n, d, k = 1_000, 64, 10
    X = gj.add_intercept(rng.standard_normal((n, d)))
    y = rng.integers(0, k, n)
    family = gj.Categorical(k, minimal=False)
    l2 = np.full((d + 1, k), 1e-2)
    l2[0] = 0.0
    assert gj.solvers.auto_method(n, d + 1, k) == "newton-cg"
    auto = gj.fit_glm(X, y, family, l2=l2, tol=1e-10)
    newton = gj.fit_glm(X, y, family, l2=l2, method="newton", tol=1e-10)
    assert int(auto.result) == int(newton.result) == gj.ResultCode.successful
    np.testing.assert_allclose(auto.coef, newton.coef, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(auto.stderr, newton.stderr, rtol=1e-6)
    np.testing.assert_allclose(auto.deviance, newton.deviance, rtol=1e-10)


@pytest.mark.parametrize("layout", ["unaligned", "fortran", "aligned"])
def test_to_device_keeps_values_and_does_not_alias_a_copied_input(layout):
    rng = np.random.default_rng(1)
    base = rng.standard_normal(3 * 1000 + 1)
    if layout == "unaligned":
        raw = base[1:].reshape(1000, 3)  # 8 bytes past an allocation: not 64-byte aligned
    elif layout == "fortran":
        raw = np.asfortranarray(base[:3000].reshape(1000, 3))
    else:
        raw = to_device(base[:3000].reshape(1000, 3)).__array__().copy()
    expected = raw.copy()
    x = to_device(raw)
    assert x.dtype == raw.dtype and x.shape == raw.shape
    np.testing.assert_array_equal(np.asarray(x), expected)
    if layout != "aligned":
        raw[0, 0] += 1.0
        assert float(x[0, 0]) == expected[0, 0]


def test_rare_cond_under_vmap_equals_each_member_alone():
    H_ok = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    H_singular = jnp.array([[1.0, 1.0], [1.0, 1.0]])  # the eigendecomposition's case
    b = jnp.array([1.0, -2.0])
    batch = jnp.stack([H_ok, H_singular, H_ok])
    x, info = jax.vmap(lambda H: solve_newton(H, b))(batch)
    for i in range(3):
        xi, info_i = solve_newton(batch[i], b)
        np.testing.assert_allclose(x[i], xi, rtol=1e-12)
        assert bool(info.singular[i]) == bool(info_i.singular)
    assert [bool(s) for s in info.singular] == [False, True, False]
    np.testing.assert_allclose(x[1], jnp.linalg.pinv(H_singular) @ b, rtol=1e-10)
    # no member needs the rare branch: the common value for all
    x_ok, info_ok = jax.vmap(lambda H: solve_newton(H, b))(jnp.stack([H_ok, 2 * H_ok]))
    np.testing.assert_allclose(x_ok[1], x_ok[0] / 2, rtol=1e-12)
    assert not bool(jnp.any(info_ok.singular))


def test_rare_cond_batches_unbatched_operands():
    out = jax.vmap(lambda p: rare_cond(p, lambda a: a + 1.0, jnp.zeros(2), jnp.ones(2)))(
        jnp.array([True, False])
    )
    np.testing.assert_array_equal(out, [[2.0, 2.0], [0.0, 0.0]])


def test_covariance_by_cholesky_equals_the_inverse_and_vmap_mixes_both_paths():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((50, 4))
    H = jnp.asarray(A.T @ A / 50)
    cov, unidentified = covariance(H, 50.0, None)
    np.testing.assert_allclose(cov, np.linalg.inv(50.0 * np.asarray(H)), rtol=1e-10)
    assert not bool(jnp.any(unidentified))
    B = A.copy()
    B[:, 3] = B[:, 2]  # collinear: the eigendecomposition flags columns 2 and 3
    H2 = jnp.asarray(B.T @ B / 50)
    covs, flags = jax.vmap(lambda H: covariance(H, 50.0, None))(jnp.stack([H, H2]))
    np.testing.assert_allclose(covs[0], cov, rtol=1e-12)
    np.testing.assert_array_equal(flags[1], [False, False, True, True])
    assert np.all(np.isinf(np.diag(covs[1])[2:]))
    np.testing.assert_allclose(covs[1][:2, :2], covariance(H2, 50.0, None)[0][:2, :2], rtol=1e-12)


def test_hessian_chunks_give_the_one_chunk_hessian():
    rng = np.random.default_rng(3)
    n, p, k = 3_000, 12, 6
    X = jnp.asarray(gj.add_intercept(rng.standard_normal((n, p - 1))))
    y = jnp.asarray(rng.integers(0, k, n))
    family = gj.Categorical(k)
    model = RowLikelihood(family, links.Canonical(family), True)
    coef = jnp.asarray(0.1 * rng.standard_normal((p, k - 1)))

    def hessian(chunk_size):
        obj = GLMObjective.from_data(
            model, X, y, jnp.ones(n), jnp.zeros(n), jnp.zeros(()), chunk_size=chunk_size
        )
        return obj.evaluate(coef, Needs(hessian="observed")).hessian

    # the default chunks a Hessian into 2^19 / (p m (m + 1) / 2) = 2912 rows: two chunks here
    np.testing.assert_allclose(hessian(None), hessian(n), rtol=1e-12, atol=1e-15)
