#!/usr/bin/env bash
# benchmarks/gpu.sh [--quick] [OUT]: glmjax's headline benchmarks on a GPU (JSON into OUT,
# default benchmarks/results/gpu, and README_table.md beside it).
#
# Needs glmjax's dependencies, threadpoolctl and jax[cuda] (pip install -e '.[bench]'
# 'jax[cuda12]'); runs from any folder (the checkout goes on PYTHONPATH: glmjax need not be
# installed). It runs
#   1. `device`: softmax n=100k d=32 k=8, logistic and Poisson n=1e6 d=20 by newton and lbfgs at
#      full size, and 10,000 Poisson fits by one vmapped fit_glm, each in float64 and float32;
#   2. `solvers` (Newton against first-order methods) and, when scikit-learn, statsmodels and
#      glum are installed, `peers --quick` (the peers themselves run on the CPU).
# It runs on a CPU too (JAX's default device), in a few minutes; --quick shrinks every problem
# (a smoke test: benchmarks/gpu.sh --quick /tmp/gpu).
set -euo pipefail
quick=()
if [[ "${1:-}" == "--quick" ]]; then quick=(--quick); shift; fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/benchmarks/results/gpu}"
py="${PYTHON:-python}"  # the Python with jax[cuda]
mkdir -p "$out" && out="$(cd "$out" && pwd)"
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
"$py" -c 'import jax; print("JAX", jax.__version__, "devices:", jax.devices())'
"$py" -m benchmarks.run device solvers "${quick[@]}" --out "$out"
if "$py" -c 'import sklearn, statsmodels, glum' 2>/dev/null; then
    "$py" -m benchmarks.run peers --quick --out "$out"
else
    echo "scikit-learn, statsmodels or glum missing: peers not run"
fi
