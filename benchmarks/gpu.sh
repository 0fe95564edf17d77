#!/usr/bin/env bash
# The CUDA tests and the benchmarks on a GPU, in one go with a time limit per stage, so that one call of a
# lent GPU machine brings back whatever finished. Results: OUT/*.csv (copied to results/bench/cuda/ after),
# OUT/log.txt, OUT/env.txt.
#
#   NASPROXY_DATA=DIR bash benchmarks/gpu.sh OUT [SECONDS_PER_STAGE...]
#
# The repository needs no install there (PYTHONPATH), only torch, pandas, scipy, click, tqdm, pyyaml; the
# benchmarks use neither optuna nor the search runner.
set -uo pipefail
out=${1:?usage: gpu.sh OUT [limits]}
shift
limits=("${@:-70 150 190 100}")
read -r -a limits <<<"${limits[*]}"
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

stage() {
    local limit=$1
    shift
    echo "== $* (limit ${limit} s)" | tee -a "$out/log.txt"
    local began=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$out/log.txt"
    echo "== exit ${PIPESTATUS[0]} after $((SECONDS - began)) s" | tee -a "$out/log.txt"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
    "$py" -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda,
torch.backends.cudnn.version(), torch.cuda.get_device_name(), torch.get_num_threads())'
    nproc
} >"$out/env.txt" 2>&1
cat "$out/env.txt"

stage "${limits[0]}" "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py
# fp32 with the engine's CUDA defaults (CUDA graphs, packing light networks) against each switched off
stage "${limits[1]}" "$py" -m benchmarks evaluate --device cuda --out "$out" \
    --arm fp32 --arm fp32-nographs --arm fp32-unpacked --arm fp32-unpacked-nographs
stage "${limits[2]}" "$py" -m benchmarks candidate --device cuda --sample 20 --out "$out" \
    --arm fp32 --arm fp32-nographs --arm fp32-unpacked
stage "${limits[3]}" "$py" -m benchmarks condense --device cuda --ipc 10 --arm fp32 --arm fp32-nographs --out "$out"
# issue 19: the search runner over a 100-architecture sample of paper720, 1 and 8 workers on the GPU
stage "${limits[4]:-300}" "$py" -m benchmarks sweep --device cuda --sample 100 --workers 8 --baseline-archs 5 --out "$out"
grep -h "^\[bench\] \|passed\|failed\|^== " "$out/log.txt" | tail -60
