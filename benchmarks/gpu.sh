#!/usr/bin/env bash
# The prepared GPU benchmark (issues 5 and 12): frozen stem, 224x224, batch 32 and 256,
# bfloat16 and float32, plus one timed epoch of the paper's RAF-DB recipe, then the PyTorch
# baseline. Run from the repository root on the GPU machine:  bash benchmarks/gpu.sh [OUTDIR]
# SMOKE=1 runs the same commands at tiny sizes on any machine, CPU included (a minute or two;
# the test suite does, so this script cannot rot). PYTHON picks the interpreter (python3).
# ml-collections is the one package the benchmark needs that a bare JAX GPU box may lack; it
# is installed from wheels in .whl/ when present (offline boxes), else from PyPI.
set -euo pipefail
out=${1:-${OUT:-benchmark_results}}
py=${PYTHON:-python3}
torch_hsnet=convert/torch_hsnet.py  # the eager PyTorch HSNet (the baseline)
if [[ ${SMOKE:-0} == 1 ]]; then
  dtypes="float32" batches="2" size=(--image_size 75 --eval_batch_size 4)
  timed=(--steps 2 --steps_per_dispatch 1 --warmup 1) epoch=(--epoch_train_size 4 --epoch_val_size 3)
  torch_args=(--image_size 75 --steps 2)
else
  dtypes="bfloat16 float32" batches="32 256" size=()
  timed=(--steps 160 --steps_per_dispatch 16) epoch=(--epoch_train_size 11044 --epoch_val_size 1227)
  torch_args=()
fi
mkdir -p "$out"
if ! "$py" -c "import ml_collections" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    "$py" -m pip install -q ml-collections
  fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
else
  echo "no nvidia-smi on this machine" | tee "$out/gpu.txt"
fi
"$py" -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())" | tee -a "$out/gpu.txt"
for dtype in $dtypes; do
  for bs in $batches; do
    "$py" -m benchmarks.step --ktl --dtype "$dtype" --batch_size "$bs" "${size[@]}" "${timed[@]}" \
      2>>"$out/stderr.log" | tee -a "$out/benchmark.jsonl"
  done
done
# The paper's RAF-DB schedule: 11,044 training + 1,227 validation images per epoch, batch 32.
"$py" -m benchmarks.step --ktl --dtype "${dtypes%% *}" --batch_size "${batches%% *}" "${size[@]}" \
  "${timed[@]}" "${epoch[@]}" --num_epochs 500 2>>"$out/stderr.log" | tee -a "$out/benchmark.jsonl"
# The PyTorch baseline on the same card (eager; float32 with TF32, then bf16 autocast).
for bs in $batches; do
  "$py" "$torch_hsnet" --batch_size "$bs" "${torch_args[@]}" | tee -a "$out/benchmark.jsonl"
  "$py" "$torch_hsnet" --batch_size "$bs" --bf16 "${torch_args[@]}" | tee -a "$out/benchmark.jsonl"
done
