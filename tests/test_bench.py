"""``glmjax bench --quick``: Newton against first-order methods on the synthetic softmax problem;
every second-order method and L-BFGS reaches the common optimum, Newton in a handful of steps;
the summary, the plot's file name and the record's keys state the sizes run; the paths written
are printed."""

import contextlib
import io
import json
import sys

import numpy as np
import pytest

from glmjax._bench import (
    TARGET_SUBOPTIMALITY,
    _count,
    make_problem,
    missing_extra,
    objective,
    run_bench,
)


@pytest.fixture(scope="module")
def solvers(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = run_bench(["solvers"], quick=True, out=str(out))
    return status, json.loads((out / "solvers.json").read_text()), out, printed.getvalue()


def test_solvers_benchmark_runs_and_reaches_the_target(solvers):
    status, record, out, _ = solvers
    assert status == 0
    assert (out / "convergence_softmax_4k.png").stat().st_size > 10_000
    methods = record["problems"]["softmax_4k"]["methods"]
    for name in ("newton", "irls", "lbfgs", "gd"):
        assert methods[name]["final_suboptimality"] <= TARGET_SUBOPTIMALITY, name
    # quadratic convergence: Newton needs a handful of iterations, far fewer than L-BFGS
    assert methods["newton"]["iterations_to_target"] <= 8
    assert methods["newton"]["iterations_to_target"] < methods["lbfgs"]["iterations_to_target"]
    assert methods["newton"]["result"] == "successful"
    assert record["machine"]["cores"] >= 1 and record["quick"] is True


def test_quick_labels_state_the_sizes_run_and_the_paths_are_printed(solvers):
    _, record, out, printed = solvers
    assert list(record["problems"]) == ["softmax_4k"]
    assert (
        record["problems"]["softmax_4k"]["description"] == "synthetic softmax, n=4,000, d=32, k=8"
    )
    assert sorted(p.name for p in out.iterdir()) == ["convergence_softmax_4k.png", "solvers.json"]
    assert "100k" not in printed and "100,000" not in printed
    summary, written = printed.split("\nwrote:\n")
    assert "synthetic softmax, n=4,000, d=32, k=8" in summary
    header = summary.strip().splitlines()[1]
    assert header.split("  ")[0] == "method" and f"iterations to {TARGET_SUBOPTIMALITY:g}" in header
    paths = [line.strip() for line in written.strip().splitlines()]
    assert paths == [
        str((out / name).resolve()) for name in ("solvers.json", "convergence_softmax_4k.png")
    ]


def test_problem_labels_state_their_sizes():
    assert [_count(n) for n in (2_000, 4_000, 100_000, 1_000_000, 1_500)] == [
        "2k", "4k", "100k", "1m", "1500"
    ]  # fmt: skip
    for name in ("softmax_100k", "softmax_20k_256", "digits", "illcond"):
        assert make_problem(name, quick=False).label == name  # full size: the key is the label
    assert make_problem("softmax_100k", quick=True).label == "softmax_4k"
    assert make_problem("softmax_20k_256", quick=True).label == "softmax_2k_32"
    assert make_problem("logistic_1m", quick=True).label == "logistic_20k"


def test_unknown_benchmark_is_a_value_error():
    with pytest.raises(ValueError, match="benchmarks/"):
        run_bench(["peers"], quick=True)


def test_missing_extra_is_reported_before_running(monkeypatch, tmp_path):
    assert missing_extra(["solvers"]) is None
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    assert 'pip install "glmjax[bench]"' in missing_extra(["solvers"])
    with pytest.raises(ModuleNotFoundError, match="threadpoolctl"):
        run_bench(["solvers"], quick=True, out=str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_penalised_objective_is_sklearns():
    """glmjax's penalised objective, scored at scikit-learn's optimum, is C * sklearn's objective
    / (C n): independent check of the penalty mapping l2 = 1 / (C n)."""
    from sklearn.linear_model import LogisticRegression

    problem = make_problem("softmax_100k", quick=True)
    n = problem.X.shape[0]
    model = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    model.fit(problem.X, problem.y)
    W = np.vstack([model.intercept_[None], model.coef_.T])
    logits = problem.X @ model.coef_.T + model.intercept_
    logz = np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), 1)) + logits.max(1)
    loss = np.sum(logz - logits[np.arange(n), problem.y])
    sklearn_objective = loss + 0.5 * np.sum(model.coef_**2)
    value = objective(problem, penalised=True).value(W)
    np.testing.assert_allclose(float(value), sklearn_objective / n, rtol=1e-12)
