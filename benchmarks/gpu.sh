#!/usr/bin/env bash
# GPU benchmark: run from the repository root on a machine with an NVIDIA GPU, Python 3.12 and
# jax (with CUDA) / numpyro / numba installed but no package registry. The wheels of the rest
# (pymc, pytensor, arviz-*, nutpie, pandas, xarray, pytest) are carried in gpu_wheels/ (see
# README).
#
# Usage: benchmarks/gpu.sh [STAGE ...]   (default: check probe sample-L sample-XL)
#   check      GPU and versions; the JAX Kalman filter against the numba kernels on the GPU
#              (tests/test_kalman_jax.py without the slow fit), about 1-2 minutes
#   probe      one log density + gradient at L-gaps and XL-gaps: JAX on the GPU against numba
#              on this machine's CPU cores, same run (benchmarks/gradient_probe.py), ~3 minutes
#   sample-L   L-gaps (2,000 x 20 with gaps) sampled by numpyro on the GPU, 2 x 1000 + 1000
#   sample-XL  XL-gaps (20,000 x 20 with gaps), likewise; target <= 60 s sampling
#   complete   the complete-data L and XL through numpyro (the issue-6 figures, for reference)
# A device call runs at most 10 minutes: split the stages over two calls, e.g.
# `benchmarks/gpu.sh check probe sample-L` then `benchmarks/gpu.sh sample-XL`.
set -u
PK=${TMPDIR:-/tmp}/ba_pk
OUT=${OUT:-benchmarks/out}
mkdir -p "$OUT"
LOG="$OUT/gpu.txt"
if [ ! -d "$PK" ]; then
    python3 -m pip install -q --no-deps --target "$PK" gpu_wheels/*.whl 2>&1 | tail -2
fi
export PYTHONPATH="$PK:$PWD"
# the GPU's memory is not taken whole at start (numba and the CPU probe share the process)
export XLA_PYTHON_CLIENT_PREALLOCATE=false
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(check probe sample-L sample-XL)
quiet() { grep -v -i warning | tee -a "$LOG"; }
run() { timeout "$1" python3 benchmarks/run.py "${@:2}" 2>&1 | quiet; }
for stage in "${stages[@]}"; do
    echo "== $stage $(date +%T)" | tee -a "$LOG"
    case "$stage" in
    check)
        nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$LOG"
        python3 -c "import jax, numpyro, pytensor, pymc; print('jax', jax.__version__, 'numpyro', numpyro.__version__, 'pytensor', pytensor.__version__, 'pymc', pymc.__version__, jax.devices())" 2>&1 | quiet
        timeout 240 python3 -m pytest tests/test_kalman_jax.py -q -p no:cacheprovider -m "not slow" 2>&1 | tail -5 | tee -a "$LOG"
        ;;
    probe)
        timeout 300 python3 benchmarks/gradient_probe.py --sizes L-gaps XL-gaps --backends jax numba 2>&1 | quiet
        ;;
    sample-L) run 300 --sizes L-gaps --models ours --backend numpyro ;;
    sample-XL) run 540 --sizes XL-gaps --models ours --backend numpyro ;;
    complete)
        run 240 --sizes XL --models ours --backend numpyro
        run 120 --sizes L --models ours --backend numpyro
        ;;
    *) echo "unknown stage $stage" | tee -a "$LOG" ;;
    esac
done
# nutpie's JAX backend (--backend nutpie-jax) also needs the arro3 wheels, absent there so far.
