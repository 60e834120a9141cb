"""``README_table.md``: the tables of the benchmarks, generated from a results folder's JSON files.

Every ``<name>.json`` there gets a section: ``solvers.json`` (written by ``glmjax bench`` or
``python -m benchmarks.run``), ``peers``, ``roofline``, ``mlp``, ``device`` and the scale runs
``scale_streaming``, ``scale_newton_cg``, ``scale_many_poisson``, ``scale_many_negbin``; any
other JSON file is listed by name. ``*.partial.json`` (an interrupted run) is left out.
"""

import json
from pathlib import Path


def _s(x) -> str:
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _e(x) -> str:
    return "—" if x is None else f"{x:.1e}"


def _ratio(x) -> str:
    return "—" if x is None else f"**{x:.2f}**"


def _yes(x) -> str:
    return {True: "yes", False: "**no**"}.get(x, "—")


def _table(columns: list[str], rows: list[list]) -> list[str]:
    """A markdown table: the header, its rule and one line per row (short rows padded)."""
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *(
            "| " + " | ".join(map(str, [*row, *[""] * (len(columns) - len(row))])) + " |"
            for row in rows
        ),
    ]


def _section(title: str, columns: list[str], rows: list[list], *notes: str) -> list[str]:
    """A ``###`` title, a table and a paragraph per note."""
    return [f"### {title}", "", *_table(columns, rows), "", *(x for n in notes for x in (n, ""))]


def _solvers(r: dict) -> list[str]:
    title = (
        f"Newton against first-order methods (to relative suboptimality "
        f"{r['target_suboptimality']:g}; the compiled solver loop alone, no validation or "
        "inference)"
    )
    columns = [
        "problem",
        "method",
        "iterations to target",
        "seconds to target",
        "run s (all iter.)",
        "compile s",
        "iterations run",
        "final suboptimality",
    ]
    rows = [
        [
            p["description"],
            m,
            f["iterations_to_target"] or "not reached",
            _s(f["seconds_to_target"]),
            _s(f["run_seconds"]),
            _s(f["compile_seconds"]),
            f["n_iter"],
            _e(f["final_suboptimality"]),
        ]
        for p in r["problems"].values()
        for m, f in p["methods"].items()
    ]
    note = "Plots: " + ", ".join(f"`{p['plot']}`" for p in r["problems"].values())
    return _section(title, columns, rows, note)


def _glmjax_rows(w: dict) -> list[list]:
    rows = []
    for label, f in w["glmjax"].items():
        name, objective = label.split(" (")
        head = [w["description"], f"glmjax {name}", objective.rstrip(")")]
        if "error" in f:
            rows.append([*head, f"failed: {f['error']}"])
            continue
        rows.append(
            [
                *head,
                _s(f["run_seconds"]),
                "",
                "",
                "",
                "all",
                f.get("n_iter", ""),
                _e(f.get("suboptimality")),
                _yes(f.get("agrees")),
            ]
        )
    return rows


def _peer_rows(w: dict) -> list[list]:
    rows = []
    for row in w["peers"]:
        head = [w["description"], f"{row['peer']} {row['solver']}", row["objective"]]
        if "error" in row:
            rows.append([*head, f"failed: {row['error'][:80]}"])
            continue
        fastest = row.get("ratio_glmjax_fastest_over_peer")
        fastest = "—" if fastest is None else f"{fastest:.2f} ({row['glmjax_fastest']})"
        rows.append(
            [
                *head,
                _s(row["run_seconds"]),
                _ratio(row.get("ratio_glmjax_newton_over_peer")),
                fastest,
                _ratio(row.get("ratio_fit_glm_over_peer")),
                row["best_threads"],
                row["n_iter"],
                _e(row["suboptimality"]),
                _yes(row["agrees"]),
            ]
        )
    for peer, why in w["not_applicable"].items():
        rows.append(
            [w["description"], peer, "", why if why.startswith("not run") else f"not run: {why}"]
        )
    return rows


def _peers(r: dict) -> list[str]:
    title = (
        "glmjax against its peers (same objective; ratio = glmjax seconds / peer seconds, < 1 "
        "means glmjax is faster; newton: glmjax's `newton` solver loop; fastest: glmjax's fastest "
        "method on that objective; fit_glm: `fit_glm` as a user calls it, `method='auto'`, "
        "validation and inference with the covariance included)"
    )
    columns = [
        "workload",
        "fit",
        "objective",
        "run s",
        "ratio newton",
        "ratio fastest",
        "ratio fit_glm",
        "threads",
        "iterations",
        "suboptimality",
        "agrees to " + f"{r['agreement']:.0e}".replace("e-0", "e-"),
    ]
    rows = [row for w in r["workloads"].values() for row in _glmjax_rows(w) + _peer_rows(w)]
    return _section(title, columns, rows)


def _roofline(r: dict) -> list[str]:
    x = r["xtx"]
    title = (
        f"Roofline: float64 `X^T X` ({x['n']:,} x {x['D']}) runs at {x['jax_gflops']:.1f} "
        f"GFLOP/s in JAX ({x['numpy_gflops']:.1f} in numpy)"
        + (f"; a column sum streams {r['stream']['gbs']:.1f} GB/s" if "stream" in r else "")
    )
    columns = [
        "problem",
        "n",
        "D",
        "m",
        "Hessian s",
        "GFLOP/s (2nD²m²)",
        "fraction of X^T X rate",
        "GFLOP/s performed (symmetric m-blocks)",
        "fraction performed",
        "Cholesky s",
        "eigh s",
        "Newton solve s",
        "gradient s",
        "gradient GB/s (8nD)",
        "fraction of stream rate",
    ]
    rows = [
        [
            name,
            f"{h['n']:,}",
            h["D"],
            h["m"],
            _s(h["seconds"]),
            f"{h['gflops']:.1f}",
            f"{h['fraction_of_xtx']:.0%}",
            f"{h['gflops_performed']:.1f}",
            f"{h['fraction_of_xtx_performed']:.0%}",
            _s(h["cholesky_seconds"]),
            _s(h["eigh_seconds"]),
            _s(h.get("solve_newton_seconds", h.get("solve_psd_seconds"))),
            _s(h["gradient_seconds"]) if "gradient_seconds" in h else "-",
            f"{h['gradient_gbs']:.1f}" if "gradient_gbs" in h else "-",
            f"{h['gradient_fraction_of_stream']:.0%}" if "gradient_gbs" in h else "-",
        ]
        for name, h in r["hessians"].items()
    ]
    note = r["symmetry_note"]
    return _section(title, columns, rows, note)


def _profile(r: dict) -> list[str]:
    title = "Profile: where `fit_glm`'s seconds go (float64, medians of 3, compile excluded)"
    columns = [
        "problem", "method", "fit_glm s", "validate s", "start s", "solve s", "infer s",
        "iterations", "evaluations", "value s", "gradient s", "Hessian s",
    ]  # fmt: skip
    rows = []
    for name, w in r["workloads"].items():
        ev = w["evaluation_seconds"]
        for f in w["fit_glm"]:
            method = f["method"]
            if f["resolved_method"] != method:
                method += f" ({f['resolved_method']})"
            rows.append([
                name, method, _s(f["fit_glm_seconds"]), _s(f["validate_seconds"]),
                _s(f["start_seconds"]), _s(f["solve_seconds"]), _s(f["infer_seconds"]),
                f["n_iter"], f["n_evals"], _s(ev["value"]), _s(ev["gradient"]), _s(ev["hessian"]),
            ])  # fmt: skip
    note = (
        "validate: conversion to JAX arrays and the host-side checks; start: g(mean T(y)); "
        "solve: the solver loop with its start; infer: deviances, log-likelihood, covariance. "
        "The pieces are timed apart, so they need not add up to fit_glm exactly"
    )
    return _section(title, columns, rows, note)


def _mlp(r: dict) -> list[str]:
    g = r["glmjax"]
    lines = [
        f"### MLP training ({r['setup']})",
        "",
        f"- glmjax `train_classifier`: {g['seconds_per_epoch'] * 1e3:.1f} ms per epoch "
        f"(first epoch with compile: {g['first_epoch_seconds_with_compile']:.2f} s)",
    ]
    if isinstance(r["torch"], str):
        lines.append(f"- PyTorch: {r['torch']}")
    else:
        t = r["torch"]
        lines.append(
            f"- PyTorch {r['torch_version']}: {t['seconds_per_epoch'] * 1e3:.1f} ms per "
            f"epoch ({t['best_threads']} threads); ratio glmjax / torch = "
            f"**{r['ratio_glmjax_over_torch']:.2f}**"
        )
    return lines + [""]


def _device(r: dict) -> list[str]:
    title = f"Headline fits on {r['device']} ({r['backend']}), float64 and float32"
    columns = [
        "workload",
        "fit",
        "run s",
        "compile s",
        "iterations",
        "result",
        "suboptimality (float64 objective)",
    ]
    rows = [
        [
            w["description"],
            label,
            _s(f["run_seconds"]),
            _s(f["compile_seconds"]),
            f["n_iter"],
            f["result"],
            _e(f["suboptimality"]),
        ]
        for w in r["workloads"].values()
        for label, f in w["fits"].items()
    ]
    m = r["many_poisson"]
    runs = "; ".join(
        f"{dtype} {_s(run['jax_vmap_seconds'])} s (compile {_s(run['jax_compile_seconds'])} s, "
        f"{run['not_converged']} not converged)"
        for dtype, run in m["runs"].items()
    )
    note = (
        f"{m['models']:,} Poisson GLMs (n={m['rows_per_model']}, p={m['columns']}) by one "
        f"vmapped `fit_glm`: {runs}; max |coef float32 - float64| "
        f"{_e(m['max_abs_coef_diff_float32_vs_float64'])}"
    )
    return _section(title, columns, rows, note)


def _scale_streaming(r: dict) -> list[str]:
    passes = r.get("n_evals", r.get("n_passes"))
    return [
        "### Out of core: `fit_glm_streaming`, Poisson",
        "",
        f"- {r['rows']:,} x {r['columns']} ({r['data_gb_on_disk']:.2f} GB on disk, chunks of "
        f"{r['chunk_rows']:,} rows): {_s(r['fit_seconds'])} s, {r['n_iter']} Newton iterations, "
        f"{passes} passes + 1 for the inference ({_s(r['seconds_per_pass'])} s per pass"
        + (f", {r['gb_per_second_per_pass']:.2f} GB/s" if "gb_per_second_per_pass" in r else "")
        + "); peak "
        f"resident memory {r['peak_rss_mib']:.0f} MiB ({r['peak_rss_before_fit_mib']:.0f} before "
        f"the fit); max |coef - truth| {_e(r['max_abs_coef_error_vs_truth'])}",
        f"- first {r['subset_rows']:,} rows, streamed vs in-memory `fit_glm`: max |coef diff| "
        f"{_e(r['subset_max_abs_coef_diff_streaming_vs_in_memory'])}, max relative stderr diff "
        f"{_e(r['subset_max_rel_stderr_diff'])}",
        "",
    ]


def _scale_newton_cg(r: dict) -> list[str]:
    title = (
        f"Hessian-free Newton: softmax n={r['rows']:,}, d={r['features']:,}, k={r['classes']} "
        f"({r['parameters']:,} coefficients; a dense Hessian would take "
        f"{_s(r['dense_hessian_gb'])} GB), l2={r['l2']:g}"
    )
    columns = ["method", "seconds", "compile s", "iterations", "converged", "objective"]
    rows = [
        [
            name,
            _s(f["seconds"]),
            _s(f["compile_seconds"]),
            f["n_iter"],
            _yes(f["converged"]),
            f"{f['objective']:.12g}",
        ]
        for name, f in ((name, r[name]) for name in ("newton_cg", "lbfgs"))
    ]
    note = (
        f"Relative objective difference {_e(r['objective_rel_diff'])}, max |coef diff| "
        f"{_e(r['max_abs_coef_diff'])} (max |coef| {r['max_abs_coef']:.2f})."
    )
    return _section(title, columns, rows, note)


def _scale_many_poisson(r: dict) -> list[str]:
    line = (
        f"- {r['models']:,} Poisson GLMs (n={r['rows_per_model']}, p={r['columns']}) by one "
        f"vmapped `fit_glm`: {_s(r['jax_vmap_seconds'])} s (compile "
        f"{_s(r['jax_compile_seconds'])} s), {r['not_converged']} not converged"
    )
    if "statsmodels_loop_seconds" in r:
        line += (
            f"; a statsmodels loop: {_s(r['statsmodels_loop_seconds'])} s, speedup "
            f"**{r['speedup']:.1f}x** ({r['speedup_including_compile']:.1f}x with compile); "
            f"max |coef diff| {_e(r['max_abs_coef_diff'])}, max relative stderr diff "
            f"{_e(r['max_rel_stderr_diff'])}"
        )
    return ["### Many small models in one call", "", line, ""]


def _scale_many_negbin(r: dict) -> list[str]:
    line = (
        f"- {r['genes']:,} negative binomial GLMs, theta per gene ({r['cells']:,} cells, "
        f"p={r['columns']}, blocks of {r['block_genes']:,} genes) by vmapped `fit_glm`: "
        f"{_s(r['jax_seconds'])} s (compile {_s(r['jax_compile_seconds'])} s; result codes "
        f"{r['result_codes']}); statsmodels' NB2 gene by gene: "
        f"{_s(r['statsmodels_subset_seconds'])} s for {r['statsmodels_subset_genes']} genes, "
        f"{_s(r['statsmodels_extrapolated_seconds'])} s extrapolated, speedup "
        f"**{r['speedup_vs_statsmodels']:.1f}x**; there max relative coef diff "
        f"{_e(r['subset_max_rel_coef_diff'])}, theta {_e(r['subset_max_rel_theta_diff'])}; "
        f"glmGamPoi's published figure scaled to this size: "
        f"{_s(r['glmgampoi_scaled_seconds'])} s"
    )
    return ["### Many negative binomial GLMs (glmGamPoi's workload)", "", line, ""]


_SECTIONS = {
    "solvers": _solvers,
    "peers": _peers,
    "profile": _profile,
    "roofline": _roofline,
    "mlp": _mlp,
    "device": _device,
    "scale_streaming": _scale_streaming,
    "scale_newton_cg": _scale_newton_cg,
    "scale_many_poisson": _scale_many_poisson,
    "scale_many_negbin": _scale_many_negbin,
}


def _footer(name: str, record: dict) -> list[str]:
    machine = record.get("machine")
    if machine is None:
        return []
    load = ", ".join(f"{x:.1f}" for x in machine["load_average"])
    quick = "quick sizes, " if record.get("quick") else ""
    return [
        f"(`{name}`: {quick}finished {machine['date_utc']}, {record['wall_seconds']:.0f} s, "
        f"load average then {load})",
        "",
    ]


def _header(machine: dict) -> list[str]:
    blas = ", ".join(
        f"{b['internal_api']} {b['version']} {b['architecture']}" for b in machine["blas"]
    )
    return [
        f"Measured {machine['date_utc']} on {machine['cpu']} ({machine['cores']} cores, "
        f"{machine['memory']}; JAX devices {', '.join(machine['jax_devices'])}), jax "
        f"{machine['versions']['jax']}, numpy BLAS: {blas}; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in machine['load_average'])}. Generated by "
        "`python -m benchmarks.run` from the JSON files beside this one.",
        "",
    ]


def write_table(folder: Path) -> str:
    """Regenerate ``folder/README_table.md`` from the JSON files there; returns its text."""
    folder = Path(folder)
    files = sorted(p for p in folder.glob("*.json") if not p.name.endswith(".partial.json"))
    records = {p.stem: json.loads(p.read_text()) for p in files}
    lines, machine = [], None
    for name, section in _SECTIONS.items():
        if name in records:
            machine = machine or records[name].get("machine")
            lines += section(records[name]) + _footer(name, records[name])
    others = [f"`{p.name}`" for p in files if p.stem not in _SECTIONS]
    if others:
        lines += ["Other results in this folder: " + ", ".join(others), ""]
    text = "\n".join((_header(machine) if machine else []) + lines)
    (folder / "README_table.md").write_text(text)
    return text
