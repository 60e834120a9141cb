"""Data sets shipped inside the package (no download at run time).

`load_digits` gives the UCI optical-recognition-of-handwritten-digits images (8x8, 10 classes)
with a fixed, stratified 80/20 train/test split.
"""

from importlib import resources
from typing import NamedTuple

import numpy as np
from jaxtyping import Float, Int

__all__ = ["Digits", "load_digits"]


class Digits(NamedTuple):
    """The digits' train/test split; features are the 8x8 image flattened row-major, in [0, 1]."""

    X_train: Float[np.ndarray, "1438 64"]
    y_train: Int[np.ndarray, " 1438"]
    X_test: Float[np.ndarray, "359 64"]
    y_test: Int[np.ndarray, " 359"]


def load_digits(*, dtype=np.float64) -> Digits:
    """The UCI optical digits: 1,797 images of 8x8 pixels, labels 0..9, 1,438 train / 359 test.

    **Arguments:**

    - `dtype`: floating dtype of the features (default float64; pass `np.float32` for JAX's default
      precision, or let `jnp.asarray` convert).

    **Returns:** a `Digits` named tuple `(X_train, y_train, X_test, y_test)` of numpy arrays: `X`
    of shape `(n, 64)` holds the pixel counts 0..16 divided by 16, `y` is int32 in 0..9. Rows keep
    the order of the original file.

    **The split** is fixed and stratified: for each class `c` (in order 0..9), the indices of that
    class are permuted with `np.random.default_rng(0)` (one generator shared by the classes) and the
    first `round(0.2 * count_c)` of them go to the test set. The resulting indices are stored in the
    file, so the split never depends on numpy's random stream.

    **Source and licence.** E. Alpaydin and C. Kaynak, *Optical Recognition of Handwritten Digits*,
    UCI Machine Learning Repository (1998), https://doi.org/10.24432/C50P49, licensed CC BY 4.0.
    These 1,797 images are the UCI test set ("optdigits.tes"): 32x32 bitmaps from 13 writers,
    counted in non-overlapping 4x4 blocks, giving integers 0..16. The copy here is the one bundled
    with scikit-learn (`sklearn.datasets.load_digits`), stored as `digits.npz` (uint8 `images`
    (1797, 8, 8), uint8 `labels`, uint16 `train_index` and `test_index`; about 50 KB).

    **Regenerating `digits.npz`** (needs scikit-learn, which glmjax does not depend on at run time):

        import numpy as np, sklearn.datasets
        d = sklearn.datasets.load_digits()
        images, labels = d.images.astype(np.uint8), d.target.astype(np.uint8)
        rng = np.random.default_rng(0)
        test = np.concatenate([
            rng.permutation(np.flatnonzero(labels == c))[: round(0.2 * np.sum(labels == c))]
            for c in range(10)
        ])
        test_index = np.sort(test).astype(np.uint16)
        train_index = np.setdiff1d(np.arange(len(labels)), test_index).astype(np.uint16)
        np.savez_compressed("digits.npz", images=images, labels=labels,
                            train_index=train_index, test_index=test_index)

    **Example:**

        >>> import glmjax as gj
        >>> X_train, y_train, X_test, y_test = gj.datasets.load_digits()
        >>> X_train.shape, X_test.shape
        ((1438, 64), (359, 64))
    """
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"`dtype` must be a floating dtype, got {dtype!r}")
    with resources.files(__name__).joinpath("digits.npz").open("rb") as f, np.load(f) as data:
        pixels = data["images"].reshape(len(data["images"]), -1)
        X = (pixels / 16).astype(dtype)
        y = data["labels"].astype(np.int32)
        train, test = data["train_index"], data["test_index"]
        return Digits(X[train], y[train], X[test], y[test])
