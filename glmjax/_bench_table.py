"""``README_table.md``: the tables of ``glmjax bench``, generated from its JSON files only."""

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


def _ratio(x) -> str:
    return "—" if x is None else f"**{x:.2f}**"


def _solvers(r: dict) -> list[str]:
    lines = [
        f"### Newton against first-order methods (to relative suboptimality "
        f"{r['target_suboptimality']:g})",
        "",
        "| problem | method | iterations to target | seconds to target | run s (all iter.) "
        "| compile s | iterations run | final suboptimality |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in r["problems"].values():
        for m, f in p["methods"].items():
            lines.append(
                f"| {p['description']} | {m} | {f['iterations_to_target'] or 'not reached'} | "
                f"{_s(f['seconds_to_target'])} | {_s(f['run_seconds'])} | "
                f"{_s(f['compile_seconds'])} | {f['n_iter']} | {f['final_suboptimality']:.1e} |"
            )
    lines += ["", "Plots: " + ", ".join(f"`{p['plot']}`" for p in r["problems"].values()), ""]
    return lines


def _peers(r: dict) -> list[str]:
    lines = [
        "### glmjax against its peers (same objective; ratio = glmjax seconds / peer "
        "seconds, < 1 means glmjax is faster; newton: glmjax's `newton`; fastest: glmjax's "
        "fastest method on that objective)",
        "",
        "| workload | fit | objective | run s | ratio newton | ratio fastest | threads "
        "| iterations | suboptimality | agrees to 1e-8 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in r["workloads"].values():
        for label, f in w["glmjax"].items():
            name, objective = label.split(" (")
            if "error" in f:
                lines.append(
                    f"| {w['description']} | glmjax {name} | {objective.rstrip(')')} | "
                    f"failed: {f['error']} | | | | | | |"
                )
                continue
            sub = f.get("suboptimality")
            agrees = {True: "yes", False: "**no**"}.get(f.get("agrees"), "—")
            lines.append(
                f"| {w['description']} | glmjax {name} | {objective.rstrip(')')} | "
                f"{_s(f['run_seconds'])} | | | 2 | {f.get('n_iter', '')} | "
                f"{'—' if sub is None else f'{sub:.1e}'} | {agrees} |"
            )
        for row in w["peers"]:
            if "error" in row:
                lines.append(
                    f"| {w['description']} | {row['peer']} {row['solver']} | "
                    f"{row['objective']} | failed: {row['error'][:80]} | | | | | | |"
                )
                continue
            lines.append(
                f"| {w['description']} | {row['peer']} {row['solver']} | {row['objective']} | "
                f"{_s(row['run_seconds'])} | {_ratio(row.get('ratio_glmjax_newton_over_peer'))} | "
                f"{row['ratio_glmjax_fastest_over_peer']:.2f} ({row['glmjax_fastest']}) | "
                f"{row['best_threads']} | {row['n_iter']} | {row['suboptimality']:.1e} | "
                f"{'yes' if row['agrees'] else '**no**'} |"
            )
        for peer, why in w["not_applicable"].items():
            why = why if why.startswith("not run") else f"not run: {why}"
            lines.append(f"| {w['description']} | {peer} | | {why} | | | | | | |")
    lines.append("")
    return lines


def _roofline(r: dict) -> list[str]:
    x = r["xtx"]
    lines = [
        f"### Roofline: float64 `X^T X` ({x['n']:,} x {x['D']}) runs at "
        f"{x['jax_gflops']:.1f} GFLOP/s in JAX ({x['numpy_gflops']:.1f} in numpy)",
        "",
        "| problem | n | D | m | Hessian s | GFLOP/s (2nD²m²) | fraction of X^T X rate "
        "| GFLOP/s performed (symmetric m-blocks) | fraction performed | Cholesky s | eigh s "
        "| solve_psd s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, h in r["hessians"].items():
        lines.append(
            f"| {name} | {h['n']:,} | {h['D']} | {h['m']} | {_s(h['seconds'])} | "
            f"{h['gflops']:.1f} | {h['fraction_of_xtx']:.0%} | "
            f"{h['gflops_performed']:.1f} | {h['fraction_of_xtx_performed']:.0%} | "
            f"{_s(h['cholesky_seconds'])} | {_s(h['eigh_seconds'])} | "
            f"{_s(h['solve_psd_seconds'])} |"
        )
    lines += ["", r["symmetry_note"], ""]
    return lines


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
    lines.append("")
    return lines


_SECTIONS = {"solvers": _solvers, "peers": _peers, "roofline": _roofline, "mlp": _mlp}


def write_table(folder: Path) -> str:
    """Regenerate ``folder/README_table.md`` from the ``<name>.json`` files there; returns it."""
    lines = []
    machine = None
    for name, section in _SECTIONS.items():
        path = folder / f"{name}.json"
        if path.exists():
            record = json.loads(path.read_text())
            machine = machine or record["machine"]
            load = ", ".join(f"{x:.1f}" for x in record["machine"]["load_average"])
            lines += section(record)
            lines += [
                f"(`{name}`: finished {record['machine']['date_utc']}, "
                f"{record['wall_seconds']:.0f} s, load average then {load})",
                "",
            ]
    if machine:
        blas = ", ".join(
            f"{b['internal_api']} {b['version']} {b['architecture']}" for b in machine["blas"]
        )
        head = [
            f"Measured {machine['date_utc']} on {machine['cpu']} ({machine['cores']} cores, "
            f"{machine['memory']}), jax {machine['versions']['jax']}, numpy BLAS: {blas}; "
            f"load average at the end {', '.join(f'{x:.1f}' for x in machine['load_average'])}."
            " Generated by `glmjax bench` from the JSON files beside this one.",
            "",
        ]
        lines = head + lines
    text = "\n".join(lines)
    (folder / "README_table.md").write_text(text)
    return text
