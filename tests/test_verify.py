"""`glmjax verify`: exit code 0 and one row per family and quantity, in-process and as a command."""

import subprocess
import sys

import jax
import pytest

from glmjax._verify import TOLERANCE, Row, format_table, run_verify

FAMILY_LABELS = [
    "Bernoulli()",
    "Binomial(trials=5)",
    "Poisson()",
    "Gaussian(2.0)",
    "Gamma(3.0)",
    "Exponential()",
    "Geometric()",
    "NegativeBinomial(2.5)",
    "Categorical(4, minimal=True)",
    "Categorical(4, minimal=False)",
]


def _check_table(text: str) -> None:
    lines = text.splitlines()
    for label in FAMILY_LABELS:
        for quantity in ("mean", "variance", "link"):
            rows = [
                line for line in lines if line.startswith(label + " ") and f" {quantity} " in line
            ]
            assert len(rows) == 1, (label, quantity)
            assert rows[0].rstrip().endswith("ok")
    assert "FAIL" not in text


def test_run_verify(capsys):
    x64_before = jax.config.jax_enable_x64
    assert run_verify() == 0
    _check_table(capsys.readouterr().out)
    assert jax.config.jax_enable_x64 == x64_before  # x64 only inside the run


def test_run_verify_rejects_arguments():
    with pytest.raises(ValueError, match="argv"):
        run_verify(["--bogus"])


def test_a_mismatch_is_reported():
    rows = [
        Row("F()", "mean", "grid", 3, 1e-3, 10 * TOLERANCE),
        Row("F()", "link", "grid", 3, 0.0, 0.0),
    ]
    assert [r.ok for r in rows] == [False, True]
    table = format_table(rows)
    assert "FAIL" in table and table.count("\n") == 3


def test_python_m_glmjax_verify():
    result = subprocess.run(
        [sys.executable, "-m", "glmjax", "verify"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    _check_table(result.stdout)
