#!/usr/bin/env bash
# One call of a lent GPU machine, at most about 6 minutes (its stages' limits), and its rehearsal on a CPU
# (tested in CI), so that the script is known to work before a loan starts:
#
#   bash benchmarks/gpu.sh OUT               # on the GPU machine (the device tool sets OUT)
#   bash benchmarks/gpu.sh --rehearse OUT    # the same stages on a CPU, tiny
#
# Stages, each under a time limit, each writing its results into OUT as it finishes (a stage killed at its
# limit loses only itself):
#   1. tests     the CUDA tests (tests/test_cuda.py: every CUDA path against its CPU twin)
#   2. sweep     the real runner over a seeded 100 of paper720 at the paper's protocol, several candidates in
#                flight, extrapolated to all 720 by the FLOP model; the authors'-style loop on 3 of them
#   3. condense  DC at 10 ipc, seconds per outer iteration against the authors'-style loop; dc-profile: where
#                an iteration's time goes
# The long ground truth of results/fashion-mnist-nas/, once the stage that took what time the others left,
# is complete, so a loan's remaining minutes go back unspent.
# Results: OUT/{env.txt,log.txt,sweep.csv,condense-ipc10.csv,dc-profile-ipc10.csv}; copy the CSVs and the log
# to results/bench/cuda/.
#
# The bare GPU machine has torch, pandas, scipy, click, tqdm, pyyaml and pytest but not optuna: carry its
# wheels in .whl/ and the Fashion-MNIST files in .data/fashion-mnist/ (benchmarks/README.md says how).
set -uo pipefail
rehearse=0
if [ "${1:-}" = --rehearse ]; then
    rehearse=1
    shift
fi
out=${1:?usage: gpu.sh [--rehearse] OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
started=$SECONDS
py=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export NASPROXY_CACHE=${NASPROXY_CACHE:-$(mktemp -d)}
has_optuna='import importlib.util as u, sys; sys.exit(u.find_spec("optuna") is None)'  # without importing it
if ! "$py" -c "$has_optuna" && compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/nasproxy-site .whl/*.whl
    export PYTHONPATH=$PYTHONPATH:/tmp/nasproxy-site
fi
if [ -d .data/fashion-mnist ]; then
    export NASPROXY_DATA=$PWD/.data
fi

stage() {  # stage LIMIT_SECONDS COMMAND...: its output into the log, its exit status and seconds after it
    local limit=$1
    shift
    echo "== $* (limit ${limit} s, at $((SECONDS - started)) s)" | tee -a "$out/log.txt"
    local began=$SECONDS
    timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$out/log.txt"
    echo "== exit ${PIPESTATUS[0]} after $((SECONDS - began)) s" | tee -a "$out/log.txt"
}

{
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || echo "no nvidia-smi"
    # versions without importing torch or optuna (seconds): torch's own version.py, read on its own, names
    # its CUDA build
    "$py" -c 'import sys, importlib.util as u; from importlib.metadata import version
path = u.find_spec("torch").submodule_search_locations[0] + "/version.py"
spec = u.spec_from_file_location("torch_version", path); torch = u.module_from_spec(spec); spec.loader.exec_module(torch)
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda, "optuna", version("optuna"))'
    echo "cpus $(nproc)"
    grep -m1 "model name" /proc/cpuinfo
    git rev-parse HEAD 2>/dev/null || echo "commit unknown"
} >"$out/env.txt" 2>&1
cat "$out/env.txt"

if [ $rehearse = 1 ]; then
    device=cpu
    sweep=(--space tiny --sample 2 --quick --epochs 2 --repeats 1 --workers 2 --baseline-archs 1 --budget-seconds 60)
    condense=(--ipc 1 --iterations 2 --eval-models 1 --epochs 4 --arm fp32 --real-batch 16)
    limits=(120 400 900)  # what it checks is that every stage works, not how fast: a loaded CPU gets room
    tiny=$(mktemp -d)
    trap 'rm -rf "$tiny"' EXIT
    # stand-ins: a Fashion-MNIST of 5,500 + 500 random images in IDX files where the GPU machine's copy is looked
    # for ($NASPROXY_DATA/fashion-mnist): the benchmarks' DC, sweep and accuracy stages then run their code on
    # it without spending minutes scoring 10,000 test images
    "$py" - "$tiny" <<'PY'
import sys
from pathlib import Path
import numpy as np  # not torch: this process then starts in a fraction of a second
rng = np.random.default_rng(0)
def write_idx(path, array):  # plain (not gzipped) IDX: its header, then the bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes() + array.tobytes())
folder = Path(sys.argv[1]) / "fashion-mnist"
for name, n in (("train", 5500), ("t10k", 500)):
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for c in range(10):
        images[labels == c, 2 * c : 2 * c + 3] += 180
    write_idx(folder / f"{name}-images-idx3-ubyte", images)
    write_idx(folder / f"{name}-labels-idx1-ubyte", labels)
PY
    export NASPROXY_DATA=$tiny
    echo "rehearsal data: stand-ins of random images, not Fashion-MNIST" >>"$out/env.txt"
else
    device=cuda
    # measured on the 2026-12-04 loan: the 100 architectures' search took 139 s with 8 in flight; the FLOP
    # counts of all 720 and the authors'-style loop add about 40 s
    sweep=(--sample 100 --workers 8 --baseline-archs 3 --budget-seconds 100)
    condense=(--ipc 10 --arm fp32)
    limits=(90 190 90)
fi

stage "${limits[0]}" "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py
stage "${limits[1]}" "$py" -m benchmarks sweep --device $device "${sweep[@]}" --out "$out"
stage "${limits[2]}" "$py" -m benchmarks condense dc-profile --device $device "${condense[@]}" --out "$out"

echo "== done in $((SECONDS - started)) s" | tee -a "$out/log.txt"
grep -h "^\[bench\] \|passed\|failed\|^== \|^stopped" "$out/log.txt" | tail -40
