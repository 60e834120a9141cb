"""``glmjax bench --quick``: every benchmark runs; every method and peer reaches one objective."""

import json

import numpy as np
import pytest

from glmjax._bench import AGREEMENT, TARGET_SUBOPTIMALITY, make_problem, run_bench


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    status = run_bench([], quick=True, out=str(out))
    records = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    return status, records, out


def test_all_benchmarks_ran_and_agree(results):
    status, records, out = results
    assert status == 0
    assert set(records) == {"solvers", "peers", "roofline", "mlp"}
    assert (out / "convergence_softmax_100k.png").stat().st_size > 10_000
    table = (out / "README_table.md").read_text()
    for name in ("sklearn newton-cholesky", "statsmodels", "glum", "GFLOP/s", "per epoch"):
        assert name in table


def test_second_order_and_lbfgs_reach_the_common_optimum(results):
    _, records, _ = results
    methods = records["solvers"]["problems"]["softmax_100k"]["methods"]
    for name in ("newton", "irls", "lbfgs", "gd"):
        assert methods[name]["final_suboptimality"] <= TARGET_SUBOPTIMALITY, name
    # quadratic convergence: Newton needs a handful of iterations, far fewer than L-BFGS
    assert methods["newton"]["iterations_to_target"] <= 8
    assert methods["newton"]["iterations_to_target"] < methods["lbfgs"]["iterations_to_target"]
    assert methods["newton"]["result"] == "successful"


def test_every_peer_reaches_glmjax_objective(results):
    _, records, _ = results
    workloads = records["peers"]["workloads"]
    peers_seen = set()
    for w in workloads.values():
        for fit in w["glmjax"].values():
            assert fit["agrees"] and fit["suboptimality"] <= AGREEMENT
        for row in w["peers"]:
            assert "error" not in row, row
            assert abs(row["suboptimality"]) <= AGREEMENT, row
            assert row["ratio_glmjax_newton_over_peer"] > 0
            peers_seen.add(row["peer"])
    assert {"sklearn", "statsmodels", "glum"} <= peers_seen


def test_penalised_objective_is_sklearns():
    """glmjax's penalised objective, scored at scikit-learn's optimum, is C * sklearn's objective
    / (C n): independent check of the penalty mapping l2 = 1 / (C n)."""
    from sklearn.linear_model import LogisticRegression

    from glmjax._bench import _objective_fn

    problem = make_problem("softmax_100k", quick=True)
    n = problem.X.shape[0]
    model = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    model.fit(problem.X, problem.y)
    W = np.vstack([model.intercept_[None], model.coef_.T])
    logits = problem.X @ model.coef_.T + model.intercept_
    logz = np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), 1)) + logits.max(1)
    loss = np.sum(logz - logits[np.arange(n), problem.y])
    sklearn_objective = loss + 0.5 * np.sum(model.coef_**2)
    value, _ = _objective_fn(problem, penalised=True)
    np.testing.assert_allclose(float(value(W)), sklearn_objective / n, rtol=1e-12)
