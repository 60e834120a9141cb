r"""Out-of-core fits: `fit_glm_streaming` fits a GLM to rows that never sit in memory together.

The objective of `fit_glm` (`glmjax._objective`) and everything a solver needs from it — the
objective, its gradient and Hessian — are sums over rows, and so is the inference
(`glmjax._inference.FitSums`). A *pass* reads the chunks of rows once and adds up, chunk by
chunk, the same per-row quantities that `fit_glm` adds up in memory
(`glmjax._objective.evaluation_sums`), each chunk through one jit-compiled function; memory holds
a few chunks plus ``O(q^2)`` numbers, whatever the number of rows. The solver is `fit_glm`'s: its
`Solver.step` (the same compiled line search, stopping rules and result codes) runs in a Python
loop, one pass per evaluation — usually one pass per Newton iteration.

**Passes**: one for the start's sums (`glmjax._start.StartSums`: least squares for the
intercept-only linear predictor, the column scales, whether there is an intercept column) and one
to choose between that start and zero; then one per evaluation; then one for the inference (and,
for the Gaussian, Gamma and inverse Gaussian, one more for the log-likelihood at R's dispersion;
with an offset and an intercept, the null model's fit by the same loop, reading only ``y``,
``weights`` and ``offset`` when the chunks are arrays). Newton-CG and optax transformations that
evaluate the objective themselves need the rows at hand and are not offered here.

**Chunks are compiled once.** Every chunk is padded to ``chunk_rows`` rows by repeating its last
row with weight 0 (a repeated row keeps ``eta`` inside the family's domain, where zeros might not),
so one compiled function serves every chunk, the short last one included.

**Reading ahead.** A thread reads, pads and validates the next two chunks while the current one
is computed (`_prefetched`): the disk or page cache, NumPy's copies and JAX's computation overlap.

**Memory.** A chunk read from a `numpy.memmap` is copied out of a fresh mapping of just those rows,
which is dropped afterwards: the pages read do not stay mapped in (and counted against) the process.
Memory holds the chunk being computed and at most the two read ahead.
"""

import mmap
import queue
import threading
from collections.abc import Callable, Iterable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike
from tqdm import tqdm

from . import links
from ._exponential_family import ExponentialFamily
from ._fit import _start_eta, assemble, check_fit_options, reuses_hessian, warn_outcome
from ._inference import fisher_hessian, fit_sums, infer, log_base_at, meat_sums
from ._misc import check_int
from ._objective import (
    RowLikelihood,
    Rows,
    broadcast_scale,
    evaluation_sums,
    fill_null_space,
    finish_evaluation,
    null_projector,
)
from ._result import GLMResult
from ._solution import RUNNING
from ._solver import Needs, Solution, Solver, make_solver
from ._start import StartSums, least_squares_start, start_sums
from ._validation import aligned_empty, validate_glm_inputs

_DEFAULT_CHUNK_ROWS = 65_536


# ----- reading chunks -----------------------------------------------------------------------------


def _read_rows(a, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of ``a`` as an in-memory array; a whole-file `numpy.memmap` is read
    through a fresh mapping of just those rows, unmapped when this returns."""
    if isinstance(a, np.memmap) and isinstance(a.base, mmap.mmap) and a.flags.c_contiguous:
        row_bytes = a.dtype.itemsize * int(np.prod(a.shape[1:], dtype=np.int64))
        rows = np.memmap(
            a.filename,
            dtype=a.dtype,
            mode="r",
            offset=a.offset + start * row_bytes,
            shape=(stop - start, *a.shape[1:]),
        )
        out = aligned_empty(rows.shape, rows.dtype)  # one copy: JAX takes it as it is
        np.copyto(out, rows)
        return out
    return np.asarray(a[start:stop])


class _Source(eqx.Module):
    """Where the chunks come from: ``make()`` gives a fresh iterable of chunk tuples; for
    arrays, ``make(design=False)`` skips reading ``X`` (a column of ones stands in)."""

    make: Callable = eqx.field(static=True)
    rows: int | None = eqx.field(static=True)
    n_chunks: int | None = eqx.field(static=True)


def _source(chunks, chunk_rows: int | None) -> _Source:
    if isinstance(chunks, tuple) and chunks and all(hasattr(a, "shape") for a in chunks):
        if not 2 <= len(chunks) <= 4:
            raise ValueError(
                f"`chunks` as arrays must be (X, y[, weights[, offset]]), got {len(chunks)} arrays"
            )
        n = chunks[0].shape[0]
        for a, name in zip(chunks, ["X", "y", "weights", "offset"][: len(chunks)], strict=True):
            if a.shape[0] != n:
                raise ValueError(f"`chunks`: {name} has {a.shape[0]} rows, X has {n}")
        rows = chunk_rows or min(n, _DEFAULT_CHUNK_ROWS)

        def arrays(design: bool = True):
            for start in range(0, n, rows):
                stop = min(start + rows, n)
                X = _read_rows(chunks[0], start, stop) if design else np.ones((stop - start, 1))
                yield (X, *(_read_rows(a, start, stop) for a in chunks[1:]))

        return _Source(arrays, rows, -(-n // rows))
    if callable(chunks):
        return _Source(lambda design=True: chunks(), chunk_rows, None)
    if isinstance(chunks, Iterable) and iter(chunks) is not chunks:
        size = len(chunks) if hasattr(chunks, "__len__") else None
        return _Source(lambda design=True: iter(chunks), chunk_rows, size)
    raise ValueError(
        "`chunks` must be a tuple of arrays (X, y[, weights[, offset]]), a function returning an "
        "iterable of such tuples (e.g. a generator function), or a re-iterable collection of them; "
        f"got {type(chunks).__name__} (a one-shot iterator cannot be read once per pass)"
    )


def _labels(clusters, chunks, source: _Source) -> Callable[[], Iterable]:
    """``make()`` giving a fresh iterable of the cluster labels of each chunk, in the order of
    the chunks: ``clusters`` is an `(N,)` array when ``chunks`` are arrays (read in the same
    rows), else like ``chunks`` a function returning an iterable of label chunks or a
    re-iterable collection of them."""
    arrays = isinstance(chunks, tuple) and chunks and all(hasattr(a, "shape") for a in chunks)
    if arrays:
        n = chunks[0].shape[0]
        if not hasattr(clusters, "shape") or tuple(clusters.shape) != (n,):
            raise ValueError(
                f"`clusters` must be an array of shape ({n},) when `chunks` are arrays, got "
                f"{getattr(clusters, 'shape', type(clusters).__name__)}"
            )
        rows = source.rows
        return lambda: (_read_rows(clusters, a, min(a + rows, n)) for a in range(0, n, rows))
    if callable(clusters):
        return clusters
    if isinstance(clusters, Iterable) and iter(clusters) is not clusters:
        return lambda: iter(clusters)
    raise ValueError(
        "`clusters` must be, like `chunks`, a function returning an iterable of label arrays "
        "(one per chunk) or a re-iterable collection of them; got "
        f"{type(clusters).__name__}"
    )


def _cluster_codes(make_labels: Callable[[], Iterable]) -> np.ndarray:
    """The distinct cluster labels, sorted (one pass over the labels alone)."""
    seen = [np.unique(np.asarray(labels)) for labels in make_labels()]
    codes = np.unique(np.concatenate(seen)) if seen else np.zeros(0)
    if codes.size < 2:
        raise ValueError(f"`clusters` must hold at least 2 clusters, got {codes.size}")
    return codes


def _with_labels(chunks: Iterable, labels: Iterable):
    """Each chunk tuple with its labels appended; ``ValueError`` when the counts differ."""
    labels = iter(labels)
    for index, chunk in enumerate(chunks):
        g = next(labels, None)
        if g is None:
            raise ValueError(f"`clusters` gave labels for {index} chunks, `chunks` has more")
        yield chunk, g
    if next(labels, None) is not None:
        raise ValueError("`clusters` gave labels for more chunks than `chunks` has")


def _pad(chunk, rows: int, family, index: int) -> tuple[np.ndarray, ...]:
    """``(X, y, weights, offset, n)``, padded to ``rows`` rows by repeating the last row with
    weight 0."""
    if not isinstance(chunk, tuple | list) or not 2 <= len(chunk) <= 4:
        raise ValueError(f"chunk {index}: each chunk must be a tuple (X, y[, weights[, offset]])")
    X, y, *rest = (np.asarray(a) if a is not None else None for a in chunk)
    weights = rest[0] if rest and rest[0] is not None else None
    offset = rest[1] if len(rest) > 1 else None
    n = X.shape[0] if X.ndim == 2 else -1
    if n < 1:
        raise ValueError(f"chunk {index}: X must be a 2-d array with rows, got shape {X.shape}")
    for a, name in [(y, "y"), (weights, "weights"), (offset, "offset")]:
        if a is not None and (a.ndim == 0 or a.shape[0] != n):
            raise ValueError(f"chunk {index}: `{name}` has shape {a.shape}, its X has {n} rows")
    if n > rows:
        raise ValueError(f"chunk {index} has {n} rows, more than `chunk_rows` = {rows}")
    if weights is None:
        weights = np.ones(n, X.dtype if np.issubdtype(X.dtype, np.floating) else float)
    if offset is None:
        m = family.natural_dim
        offset = np.zeros((n,) if m is None else (n, m), weights.dtype)
    extra = rows - n

    def edge(a):
        return np.pad(a, [(0, extra)] + [(0, 0)] * (a.ndim - 1), mode="edge") if extra else a

    return edge(X), edge(y), np.pad(weights, (0, extra)), edge(offset), n


def _prefetched(chunks: Iterable, prepare: Callable, depth: int = 2):
    """``prepare(index, chunk)`` of each chunk, computed ahead on a thread (at most ``depth``
    chunks ahead): reading, padding and validating the next chunks overlaps the computation on
    the current one (JAX dispatches that asynchronously). An exception in the thread is raised
    here, at the chunk it concerns."""
    results: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                results.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for index, chunk in enumerate(chunks):
                if not put((None, prepare(index, chunk))):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put((error, None))
            return
        put((None, done))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            error, item = results.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join()


# ----- compiled per chunk -------------------------------------------------------------------------


def _rows(family, X, y, w, offset) -> Rows:
    t = jax.vmap(family.sufficient_statistic)(y).astype(X.dtype)
    if family.natural_dim is not None and offset.ndim == 1:
        offset = offset[:, None]
    return Rows(X, y, t, w, jnp.broadcast_to(offset, t.shape))


@eqx.filter_jit
def _chunk_start(family, X, y, w, offset) -> StartSums:
    return start_sums(_rows(family, X, y, w, offset))


@eqx.filter_jit
def _chunk_values(model, coefs, X, y, w, offset):
    rows = _rows(model.family, X, y, w, offset)
    return jax.vmap(lambda c: evaluation_sums(model, c, rows, Needs())["f"])(coefs)


@eqx.filter_jit
def _chunk_evaluation(model, coef, needs, start, X, y, w, offset) -> dict:
    return evaluation_sums(model, coef, _rows(model.family, X, y, w, offset), needs, start)


@eqx.filter_jit
def _chunk_fit(model, coef, null_coef, information, X, y, w, offset):
    rows = _rows(model.family, X, y, w, offset)
    return fit_sums(model, coef, null_coef, rows, information=information)


@eqx.filter_jit
def _chunk_meat(model, coef, bread, cov_type, information, n_groups, X, y, w, offset, groups):
    rows = _rows(model.family, X, y, w, offset)
    return meat_sums(model, coef, rows, groups, cov_type=cov_type, bread=bread,
                     n_groups=n_groups, information=information)  # fmt: skip


@eqx.filter_jit
def _chunk_log_base(family, phi, X, y, w, offset):
    return log_base_at(family, phi, _rows(family, X, y, w, offset))


@jax.jit
def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


_finish_evaluation = eqx.filter_jit(finish_evaluation)


class _StreamProblem(eqx.Module):
    """What a solver may ask of the objective without its rows: the known null space."""

    family: ExponentialFamily
    l2: Array
    coef_shape: tuple[int, ...] = eqx.field(static=True)
    canonical: bool = eqx.field(static=True)

    def exact_hessian(self, information: str) -> bool:
        return information != "expected" or self.canonical

    def fill_null_space(self, H):
        return fill_null_space(H, null_projector(self.family, self.l2, self.coef_shape))


@eqx.filter_jit
def _init(solver, problem, coef, max_iter, tol, scale):
    return solver.init(problem, coef, max_iter=max_iter, tol=tol, scale=scale)


@eqx.filter_jit
def _step(solver, problem, state, evaluation):
    return solver.step(problem, state, evaluation)


_least_squares_start = eqx.filter_jit(least_squares_start)


class _Clusters:
    """The cluster labels of a streamed fit: where they come from and their distinct values."""

    def __init__(self, clusters, chunks, source: _Source):
        self.make = _labels(clusters, chunks, source)
        self.codes = _cluster_codes(self.make)

    def index(self, labels, n: int, rows: int, chunk: int) -> np.ndarray:
        """A chunk's labels as indices ``0..G-1``, padded with 0 to ``rows``."""
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"chunk {chunk}: `clusters` has shape {labels.shape}, its X has {n} "
                             "rows")  # fmt: skip
        index = np.searchsorted(self.codes, labels)
        if np.any(index >= self.codes.size) or np.any(self.codes[index] != labels):
            raise ValueError(f"chunk {chunk}: `clusters` differ from those of the first pass")
        return np.pad(index.astype(np.int32), (0, rows - n))


class _Passes:
    """Reads the chunks once per call, validating and padding each, and adds up what a chunk
    function returns; remembers the rows, columns and dtype of the first pass."""

    def __init__(self, source: _Source, family, progress: bool):
        self.source, self.family, self.progress = source, family, progress
        self.rows, self.n_rows, self.n_chunks = source.rows, None, source.n_chunks
        self.columns = self.dtype = None
        self.count = 0

    def __call__(self, chunk_fn, desc: str, *, design: bool = True, inspect=None, clusters=None):
        """``sum chunk_fn(X, y, w, o)`` over the chunks; with ``clusters`` (`_Clusters`)
        ``chunk_fn(X, y, w, o, g)``, ``g`` the chunk's cluster indices (0 in padded rows)."""
        total, n_rows = None, 0
        self.count += 1

        def prepare(index, item):
            chunk, labels = item if clusters is not None else (item, None)
            if self.rows is None:
                self.rows = int(np.shape(chunk[0])[0])
            X, y, w, o, n = _pad(chunk, self.rows, self.family, index)
            if design:
                self._check_columns(X, index)
            else:  # the null model: a column of ones instead of the design
                X = np.ones((X.shape[0], 1), X.dtype)
            try:
                X, y, w, o, _, _ = validate_glm_inputs(
                    X, y, self.family, weights=w, offset=o, check_rank=False
                )
            except ValueError as error:
                raise ValueError(f"chunk {index}: {error}") from None
            if inspect is not None:
                inspect(np.asarray(X)[:n], np.asarray(o)[:n])
            if clusters is None:
                return (X, y, w, o), n
            return (X, y, w, o, clusters.index(labels, n, self.rows, index)), n

        chunks = self.source.make(design)
        if clusters is not None:
            chunks = _with_labels(chunks, clusters.make())
        with tqdm(_prefetched(chunks, prepare), desc=desc, unit="chunk", total=self.n_chunks,
                  leave=False, disable=not self.progress) as bar:  # fmt: skip
            for arrays, n in bar:
                sums = chunk_fn(*arrays)
                total = sums if total is None else _add(total, sums)
                n_rows += n
        if total is None:
            raise ValueError("`chunks` gave no rows")
        if self.n_rows is not None and n_rows != self.n_rows:
            raise ValueError(
                f"`chunks` gave {n_rows} rows in this pass, {self.n_rows} in the first: a "
                "streaming fit needs the same rows in every pass"
            )
        self.n_rows = n_rows
        self.n_chunks = self.n_chunks or bar.n
        return total

    def _check_columns(self, X, index):
        if self.columns is None:
            self.columns, self.dtype = X.shape[1], X.dtype
        elif X.shape[1] != self.columns:
            raise ValueError(
                f"chunk {index}: X has {X.shape[1]} columns, the first chunk has {self.columns}"
            )


def _run(solver: Solver, model, passes: _Passes, coef0, l2, *, max_iter, tol, scale, design,
         bar) -> Solution:  # fmt: skip
    """The solver loop with one pass per evaluation."""
    problem = _StreamProblem(model.family, l2, coef0.shape, model.canonical)

    def evaluate(coef, needs, start: bool):
        sums = passes(
            lambda X, y, w, o: _chunk_evaluation(model, coef, needs, start, X, y, w, o),
            f"pass {passes.count + 1}",
            design=design,
        )
        n_rows = jnp.asarray(passes.n_rows, coef.dtype)  # data, not static: no recompiling
        return _finish_evaluation(sums, coef, l2, n_rows, model.family.natural_dim)

    state = _init(solver, problem, coef0, max_iter, tol, scale)
    needs = solver.needs()
    while int(state.result) == RUNNING:
        ev = evaluate(solver.trial(state), needs, not bool(state.started))
        state = _step(solver, problem, state, ev)
        if bar is not None:
            bar.update(int(state.n_steps) - bar.n)
            bar.set_postfix(objective=f"{float(state.evaluation.f):.10g}", passes=passes.count)
    return solver.postprocess(state)


def fit_glm_streaming(
    chunks: tuple[ArrayLike, ...] | Callable[[], Iterable] | Iterable,
    family: ExponentialFamily,
    *,
    link=None,
    method="newton",
    l2: ArrayLike = 0.0,
    max_iter: int = 100,
    tol: float = 1e-8,
    information: str = "expected",
    chunk_rows: int | None = None,
    covariance: bool = True,
    cov_type: str = "nonrobust",
    clusters=None,
    progress: bool = True,
) -> GLMResult:
    r"""Fit a GLM with one pass over chunks of rows per evaluation (out of core).

    Minimises the same objective as `fit_glm` with the same solvers, stopping rules and result
    codes (so the coefficients agree with `fit_glm` on the same rows) and reports the same
    `GLMResult`, while holding only one chunk of rows in memory; see `glmjax._streaming`.

    **Arguments:**

    - `chunks`: where the rows come from, re-read once per pass:
        - a tuple of arrays ``(X, y[, weights[, offset]])`` with the same number of rows, e.g.
          `numpy.memmap` arrays of files on disk, read ``chunk_rows`` rows at a time;
        - a function returning an iterable of chunk tuples ``(X_c, y_c[, weights_c[, offset_c]])``
          (a generator function reading files, a database cursor, ...), called once per pass and
          expected to give the same rows each time;
        - a re-iterable collection (e.g. a list) of chunk tuples.
    - `family`, `link`, `l2`, `max_iter`, `tol`, `information`, `covariance`: as `fit_glm`.
    - `cov_type`: as `fit_glm`, one pass more for a sandwich (``"HC0"``-``"HC3"``,
      ``"cluster"``).
    - `clusters`: for ``cov_type="cluster"``, the rows' cluster labels (any values; at least 2
      clusters; a cluster may span chunks): an `(N,)` array (e.g. a `numpy.memmap`) when
      `chunks` are arrays, else, like `chunks`, a function returning an iterable of label arrays
      or a re-iterable collection of them, one per chunk and in the same order. One pass over
      the labels alone finds the clusters; the sandwich's pass reads them with the chunks.
    - `method`: ``"newton"``, ``"irls"``, ``"lbfgs"``, ``"gd"``, or a `glmjax.solvers.Solver`
      whose descent needs only the evaluations (``"newton-cg"`` needs the rows at hand).
    - `chunk_rows`: rows per compiled chunk; chunks are padded up to it. Default: 65,536 rows for
      arrays, the size of the first chunk otherwise (later chunks must not be larger).
    - `progress`: tqdm bars over iterations and over the chunks of each pass.

    **Returns:** a `GLMResult` (`n_evals` counts the passes of the fit: the start's two, then one
    per evaluation; the inference's passes come after). A `ConvergenceWarning`
    says when the fit did not end cleanly. Each chunk is validated as `fit_glm` validates its
    inputs (a ``ValueError`` names the chunk); whether ``X`` has full column rank is a property
    of all rows together and shows as `ResultCode.singular_hessian`.

    ```python
    import numpy as np, glmjax as gj
    X = np.lib.format.open_memmap("X.npy")          # (N, p) on disk
    y = np.lib.format.open_memmap("y.npy")
    fit = gj.fit_glm_streaming((X, y), gj.Poisson(), chunk_rows=100_000)
    ```
    """
    solver = make_solver(method)
    if solver.descent.needs_problem:
        raise ValueError(
            f"`method` {method!r} evaluates the objective or Hessian-vector products itself, "
            "which needs the rows at hand: a streaming fit offers 'newton', 'irls', 'lbfgs', "
            "'gd' and optax transformations without extra arguments"
        )
    link, canonical = links.get(link, family)
    check_fit_options(max_iter=max_iter, tol=tol, information=information, covariance=covariance,
                      family=family, cov_type=cov_type, clusters=clusters)  # fmt: skip
    check_int(chunk_rows, "chunk_rows", minimum=1, optional=True)
    model = RowLikelihood(family, link, canonical)
    source = _source(chunks, chunk_rows)
    labels = None if clusters is None else _Clusters(clusters, chunks, source)
    passes = _Passes(source, family, progress)
    start = _start(model, passes, l2)
    tol = jnp.asarray(tol, start.coef.dtype)
    with tqdm(total=max_iter, desc=str(method), unit="iter", disable=not progress) as bar:
        solution = _run(solver, model, passes, start.coef, start.l2, max_iter=int(max_iter),
                        tol=tol, scale=start.scale, design=True, bar=bar)  # fmt: skip
    solution = eqx.tree_at(lambda s: s.n_evals, solution, jnp.asarray(passes.count, jnp.int32))
    options = (reuses_hessian(solver, canonical, information), information, covariance, cov_type,
               labels)  # fmt: skip
    inference = _inference(model, passes, start, solution, tol, options, solver.second_order)
    fit = assemble(model, solution, inference, information, cov_type)
    warn_outcome(fit, f"fit_glm_streaming ({family.name}, method={method!r})")
    return fit


class _Start(eqx.Module):
    """The start of a streamed fit and what its first pass learnt about the design."""

    coef: Array
    scale: Array
    eta0: Array
    l2: Array
    has_intercept: bool = eqx.field(static=True)
    has_offset: bool = eqx.field(static=True)


def _start(model, passes: _Passes, l2) -> _Start:
    """Two passes: the start's sums (and whether a column is constant, the offset zero), then
    the objective at the least-squares start and at zero, as `fit_glm` chooses between them."""
    family = model.family
    seen = {"constant": None, "first": None, "offset": False}

    def inspect(X, offset):
        constant = np.all(X == X[:1], axis=0)
        if seen["first"] is None:
            seen["first"], seen["constant"] = X[0], constant & (X[0] != 0)
        seen["constant"] &= constant & (X[0] == seen["first"])
        seen["offset"] |= bool(np.any(offset != 0))

    sums = passes(lambda X, y, w, o: _chunk_start(family, X, y, w, o), "start", inspect=inspect)
    l2 = jnp.asarray(l2, passes.dtype)
    m = family.natural_dim
    shape = (passes.columns,) if m is None else (passes.columns, m)
    if l2.shape not in {(), shape}:
        raise ValueError(f"`l2` must be a scalar or have the coefficient shape {shape}, got "
                         f"{l2.shape}")  # fmt: skip
    eta0 = _start_eta(model, sums.mean_statistic)
    zero = jnp.zeros(shape, passes.dtype)
    ls = _least_squares_start(sums, eta0)
    ls = jnp.where(jnp.all(jnp.isfinite(ls)), ls, zero)
    candidates = jnp.stack([ls, zero])
    values = passes(lambda X, y, w, o: _chunk_values(model, candidates, X, y, w, o), "start")
    return _Start(
        coef=ls if np.isfinite(values[0]) and not values[0] > values[1] else zero,
        scale=broadcast_scale(sums.column_scale, shape),
        eta0=eta0,
        l2=l2,
        has_intercept=bool(np.any(seen["constant"])),
        has_offset=seen["offset"],
    )


def _inference(model, passes: _Passes, start: _Start, solution: Solution, tol, options,
               second_order: bool):  # fmt: skip
    """`glmjax._inference.infer` with a pass for its sums (and one more for an estimating
    family's log-likelihood); with an offset and an intercept, the null model fitted first by
    the same loop on a column of ones."""
    reuse, information, covariance, cov_type, clusters = options
    family, coef = model.family, solution.coef
    m_shape = coef.shape[1:]
    if start.has_intercept and start.has_offset:
        null = _run(
            make_solver("newton"),
            model,
            passes,
            jnp.reshape(start.eta0, (1,) + m_shape),
            jnp.zeros((), coef.dtype),
            max_iter=100,
            tol=tol,
            scale=jnp.ones((1,) + m_shape, coef.dtype),
            design=False,
            bar=None,
        )
        null_coef = null.coef[0]  # fmt: skip
    else:
        null_coef = start.eta0 if start.has_intercept else jnp.zeros_like(start.eta0)
    fisher = None if reuse or not covariance else information
    sums = passes(lambda X, y, w, o: _chunk_fit(model, coef, null_coef, fisher, X, y, w, o),
                  "inference")  # fmt: skip
    if reuse:
        hessian = solution.evaluation.hessian
    elif covariance:
        hessian = fisher_hessian(sums, family, start.l2, coef.shape, passes.n_rows)
    else:
        hessian = None

    def log_base_estimated(phi):
        return passes(lambda X, y, w, o: _chunk_log_base(family, phi, X, y, w, o),
                      "log-likelihood", design=False)  # fmt: skip

    n_groups = 0 if clusters is None else clusters.codes.size

    def meat_of(bread):
        def chunk(X, y, w, o, g=None):
            return _chunk_meat(model, coef, bread, cov_type, information, n_groups, X, y, w, o, g)

        return passes(chunk, "sandwich", clusters=clusters)

    return infer(
        family, coef, solution.evaluation.grad, sums, log_base_estimated, hessian=hessian,
        n_rows=passes.n_rows, has_intercept=jnp.asarray(start.has_intercept), l2=start.l2,
        result=solution.result, covariance_=covariance, check_optimum=not second_order,
        scale_columns=start.scale, cov_type=cov_type, meat_of=meat_of,
    )  # fmt: skip
