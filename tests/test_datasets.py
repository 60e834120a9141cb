"""The shipped digits: the images of scikit-learn's copy, the documented split, a small file."""

from importlib import resources

import numpy as np
import pytest
import sklearn.datasets

import glmjax as gj


def _documented_split(labels):
    """The recipe in `load_digits`'s docstring, rerun here."""
    rng = np.random.default_rng(0)
    test = np.concatenate(
        [
            rng.permutation(np.flatnonzero(labels == c))[: round(0.2 * np.sum(labels == c))]
            for c in range(10)
        ]
    )
    test = np.sort(test)
    return np.setdiff1d(np.arange(len(labels)), test), test


def test_same_data_and_split_as_the_documented_recipe():
    reference = sklearn.datasets.load_digits()
    train, test = _documented_split(reference.target)
    d = gj.datasets.load_digits()
    np.testing.assert_array_equal(d.X_train, reference.data[train] / 16)
    np.testing.assert_array_equal(d.X_test, reference.data[test] / 16)
    np.testing.assert_array_equal(d.y_train, reference.target[train])
    np.testing.assert_array_equal(d.y_test, reference.target[test])


def test_shapes_ranges_and_stratification():
    X_train, y_train, X_test, y_test = gj.datasets.load_digits()
    assert X_train.shape == (1438, 64) and X_test.shape == (359, 64)
    assert X_train.dtype == np.float64 and y_train.dtype == np.int32
    assert X_train.min() == 0 and X_train.max() == 1
    np.testing.assert_array_equal(X_train * 16, np.round(X_train * 16))
    all_counts = np.bincount(np.concatenate([y_train, y_test]), minlength=10)
    np.testing.assert_array_equal(all_counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), np.round(0.2 * all_counts))


def test_float32_and_bad_dtype():
    d32 = gj.datasets.load_digits(dtype=np.float32)
    assert d32.X_train.dtype == np.float32
    np.testing.assert_array_equal(d32.X_train, gj.datasets.load_digits().X_train)
    with pytest.raises(ValueError, match="`dtype`"):
        gj.datasets.load_digits(dtype=np.int32)


def test_file_is_small():
    size = len(resources.files("glmjax.datasets").joinpath("digits.npz").read_bytes())
    assert size < 200_000
