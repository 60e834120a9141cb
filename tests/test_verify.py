"""``glmjax verify``: every family from its density and against its closed forms, every link;
exit code 0 and one row per family (or link) and check, as a command and in-process; the table
has a header per column, says what each error is relative to, and prints nothing beside "ok"
that exceeds the tolerance."""

import re
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


def parse_table(text: str) -> list[dict[str, str]]:
    """The rows of the table at the start of ``text`` as ``{header: cell}``, the columns cut where
    the line of dashes under the header has its gaps; every column must have a header."""
    lines = text.split("\n\n")[0].splitlines()
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    header = [lines[0][a:b].strip() for a, b in spans]
    assert all(header), header  # a label for every column
    assert set(lines[1]) == {"-", " "} and len(header) == len(spans)
    return [{h: line[a:b].strip() for h, (a, b) in zip(header, spans, strict=True)}
            for line in lines[2:]]  # fmt: skip


def _error(cell: str) -> float:
    return 0.0 if cell == "< 1e-99" else float(cell)


def assert_plain(rows: list[dict[str, str]]) -> None:
    """Relative errors only, each saying relative to what; beside "ok", an error within the
    tolerance."""
    for row in rows:
        assert set(row) >= {"max rel. error", "relative to", "tolerance", "result"}, row
        assert not any("abs" in h for h in row), row
        assert row["relative to"], row
        assert row["result"] in ("ok", "FAIL"), row
        if row["result"] == "ok":
            assert 0 <= _error(row["max rel. error"]) <= float(row["tolerance"]), row


def test_python_m_glmjax_verify():
    result = subprocess.run(
        [sys.executable, "-m", "glmjax", "verify"], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    rows = parse_table(text)
    assert list(rows[0])[:2] == ["family / link", "check"]
    assert_plain(rows)
    assert rows and all(row["result"] == "ok" for row in rows)
    for label in FAMILY_LABELS:
        for check in CLOSED_FORM_CHECKS:
            assert len(_rows(text, label, check)) == 1, (label, check)
    # verify_family's rows are labelled as the family was constructed (two Categorical cases)
    for label in ["Bernoulli()", "Poisson()", "InverseGaussian(2.0)"] + FAMILY_LABELS[-2:]:
        for check in DENSITY_CHECKS:
            assert len(_rows(text, label, check)) == 1, (label, check)
    for link in gj.links.NAMES:
        for check in LINK_CHECKS:
            assert len(_rows(text, f"link {link}", check)) == 1, (link, check)
    # every symbol used in "relative to" is explained under the table
    assert "- sigma = " in text and "- sd = " in text and "- central diff. = " in text
    assert "FAIL" not in text


def test_run_verify_of_one_family_keeps_the_global_precision(capsys):
    x64_before = jax.config.jax_enable_x64
    assert run_verify(family="glmjax:Poisson") == 0
    out = capsys.readouterr().out
    assert "Poisson: ok" in out and "normalisation" in out
    assert_plain(parse_table(out))
    assert jax.config.jax_enable_x64 == x64_before  # x64 only inside the run


def test_a_mismatch_is_reported():
    rows = [
        Row("F()", "mean", "grid", 3, 1e-3, "max(|mean|, sd)", DENSITY_TOLERANCE),
        Row("F()", "link", "grid", 3, 0.0, "max(1, |eta|)", DENSITY_TOLERANCE),
        Row("F()", "variance", "grid", 3, np.inf, "sd_i sd_j", DENSITY_TOLERANCE),
        Row("F()", "round trip", "grid", 3, 2.2e-308, "max(1, |eta|)", DENSITY_TOLERANCE),
    ]
    assert [r.ok for r in rows] == [False, True, False, True]
    table = format_table(rows)
    parsed = parse_table(table)
    assert [r["result"] for r in parsed] == ["FAIL", "ok", "FAIL", "ok"]
    assert [r["max rel. error"] for r in parsed] == ["1.00e-03", "0", "inf", "< 1e-99"]
    assert_plain(parsed)
    assert "- sd = " in table and "sigma" not in table  # only the symbols used are explained


def test_bad_family_spec_is_a_value_error():
    with pytest.raises(ValueError, match="package.module:attribute"):
        run_verify(family="glmjax.Poisson")
    with pytest.raises(ValueError, match="not an ExponentialFamily"):
        run_verify(family="glmjax:fit_glm")
