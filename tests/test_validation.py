"""`validate_glm_inputs` (and `fit_glm`, which calls it first): every bad input raises a
``ValueError`` that names the argument, before anything is compiled; good inputs come back as
arrays of one floating dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glmjax as gj
from glmjax._validation import validate_glm_inputs

N, P = 6, 2


def _X():
    return np.column_stack([np.ones(N), np.arange(N, dtype=float)])


def _y(family):
    if isinstance(family, gj.Categorical):
        return np.arange(N) % family.num_classes
    if isinstance(family, gj.Gamma | gj.Gaussian):
        return 1.0 + np.arange(N, dtype=float)
    return np.arange(N) % 2


X_BAD_SHAPES = [np.ones(N), np.ones((N, P, 1)), np.ones((0, P)), np.ones((N, 0))]


@pytest.mark.parametrize("X", X_BAD_SHAPES, ids=["1d", "3d", "no_rows", "no_columns"])
def test_bad_X_shape(X):
    with pytest.raises(ValueError, match="`X`"):
        validate_glm_inputs(X, np.zeros(len(X)), gj.Poisson())


# (family, argument name, keyword overrides, message fragment)
CASES = [
    (gj.Poisson(), "y", {"y": np.zeros(N + 1)}, "shape"),
    (gj.Poisson(), "y", {"y": np.zeros((N, 1))}, "shape"),
    (gj.Poisson(), "X", {"X": np.where(np.eye(N, P) > 0, np.nan, _X())}, "NaN"),
    (gj.Poisson(), "X", {"X": np.where(np.eye(N, P) > 0, np.inf, _X())}, "NaN or inf"),
    (gj.Gaussian(), "y", {"y": np.array([1.0, np.nan, 2, 3, 4, 5])}, "NaN"),
    (gj.Poisson(), "y", {"y": np.array([0, 1, 2, 3, 4, -1])}, "support"),
    (gj.Poisson(), "y", {"y": np.array([0, 1, 2, 3, 4, 1.5])}, "support"),
    (gj.Bernoulli(), "y", {"y": np.array([0, 1, 0, 1, 2, 1])}, "support"),
    (gj.Gamma(), "y", {"y": np.array([1.0, 2, 3, 0, 4, 5])}, "support"),
    (gj.Categorical(3), "y", {"y": np.array([0, 1, 2, 3, 0, 1])}, "support"),
    (gj.Categorical(3), "y", {"y": np.array([0, 1, 2, -1, 0, 1])}, "support"),
    (gj.Categorical(3), "y", {"y": np.array([0, 1, 2, 0.5, 0, 1])}, "support"),
    (
        gj.Binomial(),
        "y",
        {"y": np.array([0, 0.5, 1, 1.5, 0, 1]), "weights": np.full(N, 2.0)},
        "[0, n]",
    ),
    (
        gj.Binomial(),
        "y",
        {"y": np.array([0, 0.5, 1, 0.25, 0, 1]), "weights": np.full(N, 2.0)},
        "integer",
    ),
    (gj.Binomial(), "y", {"y": np.array([0, 0.5, 1, 0.5, 0, 1])}, "integer"),
    (gj.Poisson(), "weights", {"weights": np.ones(N + 1)}, "shape"),
    (gj.Poisson(), "weights", {"weights": np.array([1.0, 1, 1, -1, 1, 1])}, "non-negative"),
    (gj.Poisson(), "weights", {"weights": np.zeros(N)}, "all zero"),
    (gj.Poisson(), "weights", {"weights": np.array([1.0, 1, np.nan, 1, 1, 1])}, "NaN"),
    (gj.Poisson(), "offset", {"offset": np.zeros(N - 1)}, "shape"),
    (gj.Poisson(), "offset", {"offset": np.zeros((N, 2))}, "shape"),
    (gj.Categorical(3), "offset", {"offset": np.zeros((N, 3))}, "shape"),
    (gj.Poisson(), "offset", {"offset": np.array([0.0, 0, 0, np.inf, 0, 0])}, "NaN or inf"),
    (gj.Poisson(), "l2", {"l2": -1.0}, "non-negative"),
    (gj.Poisson(), "l2", {"l2": np.array([1.0, -1.0])}, "non-negative"),
    (gj.Poisson(), "l2", {"l2": np.ones(P + 1)}, "coefficient shape"),
    (gj.Categorical(3), "l2", {"l2": np.ones(P)}, "coefficient shape"),
    (gj.Poisson(), "l2", {"l2": np.nan}, "NaN"),
    (gj.Poisson(), "X", {"X": np.ones((3, 4)), "y": np.zeros(3)}, "p > n"),
    (gj.Poisson(), "X", {"weights": np.array([1.0, 0, 0, 0, 0, 0])}, "positive weight"),
    (gj.Poisson(), "X", {"X": np.column_stack([_X(), np.zeros(N)])}, "all-zero"),
    (gj.Poisson(), "X", {"X": np.column_stack([_X(), np.full(N, 2.0)])}, "constant columns"),
    (gj.Poisson(), "X", {"X": np.ones((N, 2)) + 1j}, "real"),
]


@pytest.mark.parametrize(("family", "name", "kwargs", "fragment"), CASES)
def test_bad_input_raises_naming_the_argument(family, name, kwargs, fragment):
    args = {"X": _X(), "y": _y(family)} | kwargs
    with pytest.raises(ValueError, match=f"`{name}`") as info:
        validate_glm_inputs(args.pop("X"), args.pop("y"), family, **args)
    assert fragment in str(info.value)


def test_fit_glm_validates_before_compiling(monkeypatch):
    """`fit_glm` raises on bad input without reaching the (compiled) solver."""
    from glmjax import _fit

    def fail(*args, **kwargs):
        raise AssertionError("the solver was called")

    monkeypatch.setattr(_fit, "_solve", fail)
    with pytest.raises(ValueError, match="`y`"):
        gj.fit_glm(_X(), np.array([0, 1, 2, 3, 4, -1]), gj.Poisson())
    with pytest.raises(ValueError, match="`weights`"):
        gj.fit_glm(_X(), np.arange(N), gj.Poisson(), weights=-np.ones(N))


def test_p_greater_than_n_and_constant_columns_are_fine_with_a_ridge():
    X = np.column_stack(
        [_X(), np.zeros(N), np.full(N, 2.0), np.arange(N) ** 2, np.sin(np.arange(N))]
    )
    X = np.column_stack([X, np.cos(np.arange(N)), np.ones(N)])  # p = 8 > n = 6
    out = validate_glm_inputs(X, np.arange(N), gj.Poisson(), l2=0.1)
    assert out[0].shape == (N, 8)
    # a ridge of zero on some coefficient does not count
    with pytest.raises(ValueError, match="`X`"):
        validate_glm_inputs(X, np.arange(N), gj.Poisson(), l2=np.r_[0.0, np.ones(7)])


def test_zero_and_constant_columns_are_judged_column_by_column():
    # scikit-learn's objective: an unpenalised intercept, a ridge on every other coefficient
    X = np.column_stack([np.ones(N), np.arange(N), np.zeros(N), np.full(N, 3.0)])
    l2 = np.array([0.0, 0.1, 0.1, 0.1])
    assert validate_glm_inputs(X, np.arange(N), gj.Poisson(), l2=l2)[0].shape == (N, 4)
    l2_cat = np.broadcast_to(l2[:, None], (4, 2))
    assert validate_glm_inputs(X, np.arange(N) % 3, gj.Categorical(3), l2=l2_cat)[4].shape == (4, 2)
    with pytest.raises(ValueError, match=r"all-zero column\(s\) \[2\]"):
        validate_glm_inputs(X, np.arange(N), gj.Poisson(), l2=np.array([0.0, 0.1, 0.0, 0.1]))
    with pytest.raises(ValueError, match="2 constant columns"):
        validate_glm_inputs(X, np.arange(N), gj.Poisson(), l2=np.array([0.0, 0.1, 0.1, 0.0]))


def test_defaults_and_dtypes():
    X, y, w, offset, l2, _ = validate_glm_inputs(_X().astype(int), np.arange(N), gj.Poisson())
    dtype = jnp.result_type(float)  # float64 here: conftest turns on x64
    assert all(a.dtype == dtype for a in (X, y, w, offset, l2))
    np.testing.assert_array_equal(w, np.ones(N))
    np.testing.assert_array_equal(offset, np.zeros(N))
    assert l2.shape == ()

    # a float32 X sets the dtype of everything
    X, y, w, offset, l2, _ = validate_glm_inputs(
        _X().astype(np.float32), np.arange(N), gj.Poisson(), weights=np.ones(N), l2=np.ones(P)
    )
    assert all(a.dtype == jnp.float32 for a in (X, y, w, offset, l2))

    # a vector family: offset of the shape of eta, an (n,) offset broadcast to every entry
    _, _, _, offset, _, _ = validate_glm_inputs(_X(), np.arange(N) % 3, gj.Categorical(3))
    assert offset.shape == (N, 2)
    _, _, _, offset, _, _ = validate_glm_inputs(
        _X(), np.arange(N) % 3, gj.Categorical(3, minimal=False), offset=np.arange(N, dtype=float)
    )
    np.testing.assert_array_equal(offset, np.repeat(np.arange(N, dtype=float)[:, None], 3, 1))


def test_binomial_trials_are_weights_times_family_trials():
    y = np.array([0, 1 / 3, 2 / 3, 1, 0.5, 0.25])
    trials = np.array([3, 3, 3, 3, 2, 4.0])
    validate_glm_inputs(_X(), y, gj.Binomial(), weights=trials)
    validate_glm_inputs(_X(), y, gj.Binomial(trials=12.0))  # 12 y is an integer
    with pytest.raises(ValueError, match="`y`"):
        validate_glm_inputs(_X(), y, gj.Binomial(trials=2.0))


def test_traced_inputs_skip_value_checks_but_not_shape_checks():
    """Under jit the values are unknown: NaN passes (the solver reports it), shapes still raise."""

    @jax.jit
    def run(X, y, w):
        return validate_glm_inputs(X, y, gj.Poisson(), weights=w)[2]

    w = jnp.array([1.0, np.nan, -1, 0, 1, 1])
    np.testing.assert_array_equal(run(jnp.asarray(_X()), jnp.full(N, -1.5), w), w)
    with pytest.raises(ValueError, match="`y`"):
        run(jnp.asarray(_X()), jnp.zeros(N + 1), w)
