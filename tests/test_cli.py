"""The ``glmjax`` command line in-process (`glmjax._cli.main`): ``bench``'s help lists every
benchmark, an unknown name is argparse's usage error, and a missing module of the ``bench`` extra
stops it before it starts, with one line saying how to install it."""

import sys

import pytest

import glmjax as gj
from glmjax._bench import BENCHMARKS
from glmjax._cli import main


def _words(text: str) -> str:
    return " ".join(text.split())  # argparse and the listing wrap lines where they like


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"glmjax {gj.__version__}"


def test_bench_help_lists_every_benchmark_with_its_description(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    text = _words(capsys.readouterr().out)
    for name, bench in BENCHMARKS.items():
        assert f"{name} {_words(bench.help)}" in text, name
    assert 'pip install "glmjax[bench]"' in text and "python -m benchmarks.run" in text


def test_unknown_benchmark_is_a_usage_error_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "peers", "--quick"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: glmjax bench" in err and "Traceback" not in err
    assert "invalid choice: 'peers' (choose from " in err
    assert all(repr(name) in err for name in BENCHMARKS)
    assert "python -m benchmarks.run" in err  # where peers lives


def test_missing_bench_extra_is_one_line_before_anything_runs(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl now fails
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert "threadpoolctl" in lines[0] and 'pip install "glmjax[bench]"' in lines[0]
    assert captured.out == "" and not list(tmp_path.iterdir())
