"""``glmjax bench --quick``: Newton against first-order methods on the synthetic softmax problem;
every second-order method and L-BFGS reaches the common optimum, Newton in a handful of steps."""

import json

import numpy as np
import pytest

from glmjax._bench import TARGET_SUBOPTIMALITY, make_problem, objective, run_bench


@pytest.fixture(scope="module")
def solvers(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    status = run_bench(["solvers"], quick=True, out=str(out))
    return status, json.loads((out / "solvers.json").read_text()), out


def test_solvers_benchmark_runs_and_reaches_the_target(solvers):
    status, record, out = solvers
    assert status == 0
    assert (out / "convergence_softmax_100k.png").stat().st_size > 10_000
    methods = record["problems"]["softmax_100k"]["methods"]
    for name in ("newton", "irls", "lbfgs", "gd"):
        assert methods[name]["final_suboptimality"] <= TARGET_SUBOPTIMALITY, name
    # quadratic convergence: Newton needs a handful of iterations, far fewer than L-BFGS
    assert methods["newton"]["iterations_to_target"] <= 8
    assert methods["newton"]["iterations_to_target"] < methods["lbfgs"]["iterations_to_target"]
    assert methods["newton"]["result"] == "successful"
    assert record["machine"]["cores"] >= 1 and record["quick"] is True


def test_unknown_benchmark_is_a_value_error():
    with pytest.raises(ValueError, match="benchmarks/"):
        run_bench(["peers"], quick=True)


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
