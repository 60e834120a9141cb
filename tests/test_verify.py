"""``glmjax verify``: every family from its density and against its closed forms, every link;
exit code 0 and one row per family (or link) and check, as a command and in-process."""

import subprocess
import sys

import jax
import numpy as np
import pytest

import glmjax as gj
from glmjax._verify import DENSITY_TOLERANCE, Row, format_table, run_verify

FAMILY_LABELS = [
    "Bernoulli()",
    "Binomial(trials=5)",
    "Poisson()",
    "Gaussian(2.0)",
    "Gamma(3.0)",
    "InverseGaussian(2.0)",
    "Exponential()",
    "Geometric()",
    "NegativeBinomial(2.5)",
    "Categorical(4, minimal=True)",
    "Categorical(4, minimal=False)",
]
CLOSED_FORM_CHECKS = ["mean = closed form", "variance = closed form", "derived link = written link"]
DENSITY_CHECKS = ["normalisation", "mean", "variance", "link(mean(eta)) = eta",
                  "link = derived link"]  # fmt: skip
LINK_CHECKS = ["g = inverse of g^-1", "d mu/d eta = finite diff."]


def _rows(text: str, subject: str, check: str) -> list[str]:
    return [
        line for line in text.splitlines()
        if line.startswith(subject + " ") and f"  {check}  " in line
    ]  # fmt: skip


def test_python_m_glmjax_verify():
    result = subprocess.run(
        [sys.executable, "-m", "glmjax", "verify"], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    header = text.splitlines()[0].split()
    assert header[:3] == ["family", "/", "link"] and "tolerance" in header
    for label in FAMILY_LABELS:
        for check in CLOSED_FORM_CHECKS:
            assert len(_rows(text, label, check)) == 1, (label, check)
    # verify_family's rows are labelled by the family's name
    for name in ["Bernoulli", "Poisson", "InverseGaussian", "Categorical"]:
        for check in DENSITY_CHECKS:
            assert _rows(text, name, check), (name, check)
    for link in gj.links.NAMES:
        for check in LINK_CHECKS:
            assert len(_rows(text, f"link {link}", check)) == 1, (link, check)
    body = text.split("\n\n")[0].splitlines()[2:]
    assert body and all(line.rstrip().endswith("ok") for line in body)
    assert "FAIL" not in text


def test_run_verify_of_one_family_keeps_the_global_precision(capsys):
    x64_before = jax.config.jax_enable_x64
    assert run_verify(family="glmjax:Poisson") == 0
    out = capsys.readouterr().out
    assert "Poisson: ok" in out and "normalisation" in out
    assert jax.config.jax_enable_x64 == x64_before  # x64 only inside the run


def test_a_mismatch_is_reported():
    rows = [
        Row("F()", "mean", "grid", 3, 1e-3, DENSITY_TOLERANCE),
        Row("F()", "link", "grid", 3, 0.0, DENSITY_TOLERANCE),
        Row("F()", "variance", "grid", 3, np.inf, DENSITY_TOLERANCE),
    ]
    assert [r.ok for r in rows] == [False, True, False]
    table = format_table(rows)
    assert table.count("FAIL") == 2 and table.count("\n") == 4


def test_bad_family_spec_is_a_value_error():
    with pytest.raises(ValueError, match="package.module:attribute"):
        run_verify(family="glmjax.Poisson")
    with pytest.raises(ValueError, match="not an ExponentialFamily"):
        run_verify(family="glmjax:fit_glm")
