"""Data-parallel fits on 4 (virtual CPU) devices equal single-device fits, with rows really split.

The 4 devices exist only if XLA_FLAGS is set before JAX starts, so the checks run in a subprocess
that prints its measurements as JSON; the assertions are here.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import glmjax as gj

_SCRIPT = textwrap.dedent(
    r"""
    import json, re
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import glmjax as gj
    from glmjax._objective import GLMObjective, RowLikelihood
    from glmjax._sharding import row_blocks
    from glmjax._solver import Needs
    
    mesh = jax.make_mesh((4,), ("rows",))
    rng = np.random.default_rng(0)
    n, p = 2000, 4
    X = np.c_[np.ones(n), rng.normal(size=(n, p - 1))]
    cases = {
        "Bernoulli": (gj.Bernoulli(), rng.binomial(1, 1 / (1 + np.exp(-X @ [0.2, 1, -1, 0.5])))),
        "Poisson": (gj.Poisson(), rng.poisson(np.exp(X @ [0.5, 0.3, -0.2, 0.1])).astype(float)),
        "Categorical": (gj.Categorical(3), rng.integers(0, 3, n)),
    }
    cases = {name: (family, np.asarray(y, float)) for name, (family, y) in cases.items()}
    out = {"device_count": jax.device_count()}
    try:
        gj.shard_rows(mesh, np.ones((2001, 2)))
    except ValueError as e:
        out["uneven_error"] = str(e)
    for name, (family, y) in cases.items():
        # chunks of 100 rows per device: the Hessian is summed over 5 chunks of each device's rows
        single = gj.fit_glm(X, y, family, tol=1e-10, chunk_size=100)
        Xs, ys = gj.shard_rows(mesh, X, y)
        sharded = gj.fit_glm(Xs, ys, family, tol=1e-10, chunk_size=100)

        # what XLA makes of the pieces every solver step uses on these inputs: the compiled
        # program's collectives, and the sharding of the linear predictor inside it
        seen = {}

        def pieces(X, y):
            model = RowLikelihood(family, gj.links.Canonical(family), True)
            obj = GLMObjective.from_data(
                model, X, y, jnp.ones(n), jnp.zeros(n), 0.0, row_blocks=row_blocks(Xs),
                chunk_size=100,
            )
            coef = jnp.full(obj.coef_shape, 0.1)
            jax.debug.inspect_array_sharding(
                obj.eta(coef), callback=lambda s: seen.setdefault("eta", s)
            )
            return obj.evaluate(coef, Needs(hessian="observed"))

        hlo = jax.jit(pieces).lower(Xs, ys).compile().as_text()
        gathered = re.findall(r"= (\w+\[[^\]]*\])\S* all-gather\(", hlo)
        out[name] = {
            "coef_diff": float(np.max(np.abs(np.asarray(single.coef) - np.asarray(sharded.coef)))),
            "stderr_rel_diff": float(np.max(np.abs(sharded.stderr / single.stderr - 1))),
            "deviance_rel_diff": float(abs(sharded.deviance / single.deviance - 1)),
            "n_iter": [int(single.n_iter), int(sharded.n_iter)],
            "converged": bool(single.converged) and bool(sharded.converged),
            "single_devices": len(single.coef.sharding.device_set),
            "X_spec": list(Xs.sharding.spec),
            "X_shards": sorted([list(s.data.shape) for s in Xs.addressable_shards]),
            "X_shard_devices": len({s.device for s in Xs.addressable_shards}),
            "y_shards": sorted([list(s.data.shape) for s in ys.addressable_shards]),
            "coef_devices": len(sharded.coef.sharding.device_set),
            "coef_replicated": sharded.coef.sharding.is_fully_replicated,
            "eta_devices": seen["eta"].num_devices,
            "eta_replicated": seen["eta"].is_fully_replicated,
            "row_blocks": row_blocks(Xs),
            "all_gathers": gathered,
            "all_reduces": hlo.count("all-reduce("),
        }
    # cluster-robust errors, the clusters spread over every device's rows
    family, y = cases["Poisson"]
    groups = rng.integers(0, 25, n)
    Xs, ys = gj.shard_rows(mesh, X, y)
    robust = [gj.fit_glm(A, b, family, tol=1e-10, chunk_size=100, cov_type="cluster",
                         clusters=groups) for A, b in [(X, y), (Xs, ys)]]  # fmt: skip
    out["cluster_cov_rel_diff"] = float(np.max(np.abs(robust[1].cov / robust[0].cov - 1)))
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def four_devices():
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.parametrize("family", ["Bernoulli", "Poisson", "Categorical"])
def test_four_device_fit_equals_single_device_fit(four_devices, family):
    assert four_devices["device_count"] == 4
    r = four_devices[family]
    assert r["converged"]
    assert r["coef_diff"] <= 1e-10
    assert r["stderr_rel_diff"] <= 1e-10
    assert r["deviance_rel_diff"] <= 1e-10
    assert r["single_devices"] == 1


def test_four_device_cluster_sandwich_equals_single_device(four_devices):
    assert four_devices["cluster_cov_rel_diff"] <= 1e-10


@pytest.mark.parametrize("family", ["Bernoulli", "Poisson", "Categorical"])
def test_rows_stay_split_and_sums_are_all_reduced(four_devices, family):
    r = four_devices[family]
    # inputs: 4 blocks of 500 rows on 4 different devices
    assert r["X_spec"] == ["rows", None]
    assert r["X_shards"] == [[500, 4]] * 4 and r["X_shard_devices"] == 4
    assert r["y_shards"] == [[500]] * 4
    # inside the compiled objective, gradient and Hessian (summed over chunks of rows): eta is split
    # by rows, no rows are gathered (chunks are cut from each device's own block), the sums over
    # rows are all-reduces; the fitted coefficients are replicated
    assert r["row_blocks"] == 4
    assert r["eta_devices"] == 4 and not r["eta_replicated"]
    assert r["all_gathers"] == []
    assert r["all_reduces"] > 0
    assert r["coef_devices"] == 4 and r["coef_replicated"]


def test_shard_rows_checks_its_arguments(four_devices):
    assert "2001 rows, not a multiple of the 4 devices" in four_devices["uneven_error"]
    import jax
    import numpy as np

    mesh = jax.make_mesh((1,), ("rows",))
    (x,) = gj.shard_rows(mesh, np.ones((3, 2)))
    assert x.shape == (3, 2)
    with pytest.raises(ValueError, match="0-d"):
        gj.shard_rows(mesh, np.float64(1.0))
    with pytest.raises(ValueError, match="not an axis"):
        gj.shard_rows(mesh, np.ones(3), axis="cols")


_MULTIHOST = textwrap.dedent(
    r"""
    import sys
    import jax
    port, pid = sys.argv[1], int(sys.argv[2])
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=pid)
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec
    import glmjax as gj

    mesh = jax.make_mesh((jax.device_count(),), ("rows",), axis_types=(AxisType.Auto,))
    rng = np.random.default_rng(0)
    n = 2000
    X = np.c_[np.ones(n), rng.normal(size=(n, 3))]
    y = rng.poisson(np.exp(X @ [0.5, 0.3, -0.2, 0.1])).astype(float)
    mine = slice(pid * n // 2, (pid + 1) * n // 2)  # each process holds only its own rows
    Xg = jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("rows")), X[mine])
    yg = jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("rows")), y[mine])
    fit = gj.fit_glm(Xg, yg, gj.Poisson(), tol=1e-10)
    local = np.asarray(fit.coef.addressable_data(0))
    ref = np.asarray(gj.fit_glm(X, y, gj.Poisson(), tol=1e-10).coef)
    print("RESULT", jax.process_count(), Xg.is_fully_addressable, np.max(np.abs(local - ref)))
    """
)


def test_two_processes_with_jax_distributed_equal_one():
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = str(s.getsockname()[1])
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MULTIHOST, port, str(pid)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for pid in (0, 1)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        line = next(s for s in out.splitlines() if s.startswith("RESULT "))
        count, addressable, diff = line.split()[1:]
        # two processes, a global array neither can read whole, the single-process optimum
        assert count == "2" and addressable == "False"
        assert float(diff) <= 1e-10
