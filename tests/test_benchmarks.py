"""The repository's benchmarks (``python -m benchmarks.run``) at quick sizes: peers, roofline and
mlp run, every glmjax fit and every applicable peer reaches the common objective, and the table
is generated; an unknown benchmark is a usage error."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent  # the checkout, which holds benchmarks/
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.peers import AGREEMENT  # noqa: E402
from benchmarks.run import BENCHMARKS, main  # noqa: E402


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmarks")
    status = main(["peers", "roofline", "mlp", "--quick", "--out", str(out)])
    records = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    return status, records, out


def test_runs_and_writes_one_record_per_benchmark(quick_run):
    status, records, out = quick_run
    assert status == 0
    assert set(records) == {"peers", "roofline", "mlp"}
    assert not list(out.glob("*.partial.json"))
    for name, record in records.items():
        assert record["benchmark"] == name and record["quick"] is True
        assert record["wall_seconds"] > 0 and record["machine"]["cores"] >= 1


def test_every_fit_reaches_the_common_objective(quick_run):
    _, records, _ = quick_run
    peers_seen = set()
    for w in records["peers"]["workloads"].values():
        assert w["glmjax"], w["description"]
        for label, fit in w["glmjax"].items():
            assert fit["agrees"] and fit["suboptimality"] <= AGREEMENT, label
        for row in w["peers"]:
            assert "error" not in row, row
            assert abs(row["suboptimality"]) <= AGREEMENT, row
            assert row["ratio_glmjax_newton_over_peer"] > 0
            assert row["ratio_glmjax_fastest_over_peer"] > 0
            peers_seen.add(row["peer"])
        # nemos and glmax are optional (a second Python): run, or said why not
        for peer in ("nemos", "glmax"):
            ran = any(row["peer"] == peer for row in w["peers"])
            assert ran or peer in w["not_applicable"], (peer, w["description"])
    assert {"sklearn", "statsmodels", "glum"} <= peers_seen


def test_quick_descriptions_state_the_quick_sizes(quick_run):
    _, records, _ = quick_run
    descriptions = [w["description"] for w in records["peers"]["workloads"].values()]
    assert "synthetic softmax, n=4,000, d=32, k=8" in descriptions
    assert "poisson, n=20,000, d=20" in descriptions
    assert records["roofline"]["hessians"]["poisson_1m"]["n"] == 20_000


def test_roofline_and_mlp_numbers(quick_run):
    _, records, _ = quick_run
    roofline = records["roofline"]
    assert roofline["xtx"]["jax_gflops"] > 0
    for h in roofline["hessians"].values():
        assert h["gflops"] > 0 and h["fraction_of_xtx"] > 0
        assert min(h["cholesky_seconds"], h["eigh_seconds"], h["solve_newton_seconds"]) > 0
        assert h["gradient_gbs"] > 0 and h["gradient_fraction_of_stream"] > 0
    assert roofline["stream"]["gbs"] > 0
    assert records["mlp"]["glmjax"]["seconds_per_epoch"] > 0


def test_table_mentions_peers_rates_and_epochs(quick_run):
    _, _, out = quick_run
    table = (out / "README_table.md").read_text()
    for text in ("sklearn newton-cholesky", "statsmodels", "glum", "GFLOP/s", "per epoch"):
        assert text in table, text


def test_unknown_benchmark_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown benchmark(s): bogus" in err and "peers" in err


def test_help_lists_every_benchmark(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name, bench in BENCHMARKS.items():
        assert name in text and bench.help in text


def test_profile_times_each_piece_of_a_fit():
    from benchmarks.profile import pieces

    row = pieces("digits", "auto", quick=True)
    assert row["resolved_method"] == "newton-cg"  # digits: a Hessian is worth 179 products
    assert row["n_iter"] > 0 and row["n_evals"] >= row["n_iter"]
    for piece in ("validate", "start", "solve", "infer"):
        assert 0 < row[f"{piece}_seconds"] < 60, piece
    assert row["solve_seconds"] < 10 * row["fit_glm_seconds"]
