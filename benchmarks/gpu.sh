#!/usr/bin/env bash
# The prepared GPU benchmark (issue 5): frozen stem, 224x224, batch 32 and 256, bfloat16 and
# float32, plus one timed epoch of the paper's RAF-DB recipe. Run from the repository root on
# the GPU machine:  bash benchmarks/gpu.sh [OUTDIR]
# ml-collections is the one package the benchmark needs that a bare JAX GPU box may lack; it
# is installed from wheels in .whl/ when present (offline boxes), else from PyPI.
set -euo pipefail
out=${1:-${OUT:-benchmark_results}}
mkdir -p "$out"
if ! python3 -c "import ml_collections" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    python3 -m pip install -q ml-collections
  fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__)" | tee -a "$out/gpu.txt"
for dtype in bfloat16 float32; do
  for bs in 32 256; do
    python3 -m hsnet_jax.benchmark --ktl --dtype "$dtype" --batch_size "$bs" --steps 160 \
      --steps_per_dispatch 16 2>>"$out/stderr.log" | tee -a "$out/benchmark.jsonl"
  done
done
# The paper's RAF-DB schedule: 11,044 training + 1,227 validation images per epoch, batch 32.
python3 -m hsnet_jax.benchmark --ktl --dtype bfloat16 --batch_size 32 --steps 32 \
  --epoch_train_size 11044 --epoch_val_size 1227 --num_epochs 500 2>>"$out/stderr.log" \
  | tee -a "$out/benchmark.jsonl"
# The PyTorch baseline on the same card (benchmarks/torch_hsnet.py, eager).
for bs in 32 256; do
  python3 benchmarks/torch_hsnet.py --batch_size "$bs" | tee -a "$out/benchmark.jsonl"
  python3 benchmarks/torch_hsnet.py --batch_size "$bs" --bf16 | tee -a "$out/benchmark.jsonl"
done
