#!/usr/bin/env bash
# GPU benchmark: run from the repository root on a machine with an NVIDIA GPU, Python 3.12 and
# jax / numpyro / numba installed but no package registry. The wheels of the rest
# (pymc, pytensor, arviz-*, nutpie, pandas, xarray) are carried in gpu_wheels/ (see README).
set -u
PK=${TMPDIR:-/tmp}/ba_pk
OUT=${OUT:-benchmarks/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-deps --target "$PK" gpu_wheels/*.whl 2>&1 | tail -2
export PYTHONPATH="$PK:$PWD"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import jax, numpyro; print('jax', jax.__version__, 'numpyro', numpyro.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
run() { timeout "$1" python3 benchmarks/run.py "${@:2}" 2>&1 | grep -v Warning | tee -a "$OUT/gpu.txt"; }
run 240 --sizes XL --models ours --backend numpyro
run 120 --sizes L --models ours --backend numpyro
timeout 60 python3 benchmarks/gradient_probe.py --sizes L XL 2>&1 | grep -v Warning | tee -a "$OUT/gpu.txt"
# nutpie's JAX backend (--backend nutpie-jax) also needs the arro3 wheels, absent there so far.
