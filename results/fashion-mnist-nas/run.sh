#!/usr/bin/env bash
# The Fashion-MNIST NAS experiment (issue 18). Every stage is a resumable `nasproxy search` into one Optuna
# journal in this folder: re-running the script trains only what is missing, and never repeats a finished
# architecture. Usage: bash results/fashion-mnist-nas/run.sh [STAGE ...]   (default: every stage, in order)
# OMP_NUM_THREADS=1 keeps one core free for other work on a 2-core machine. Two copies of the script (or of
# one stage) on the same journal share its architectures: each is trained once, by whichever worker claims it.
#
# The same experiment over the whole paper720 on a GPU, into a folder of its own (see README.md):
#   OUT=results/fashion-mnist-nas/gpu SPACE=paper720 SAMPLE=720 SEARCH_ARGS="--devices cuda:0 --workers 4" \
#     bash results/fashion-mnist-nas/run.sh
# HOURS=2.5 bash results/fashion-mnist-nas/run.sh   stops starting architectures after 2.5 hours (exit status 75)
set -euo pipefail
cd "${NAS_ROOT:-$(dirname "$0")/../..}"  # NAS_ROOT: run a copy of this script against a checkout
HERE=${OUT:-results/fashion-mnist-nas}   # the journal and the ground truth's architecture lists
mkdir -p "$HERE"
STORE=$HERE/studies.journal
# checkpoints of the architectures in training live beside the journal, so that a session's last, unfinished
# architectures are committed with it and the next session resumes them (finished ones remove theirs)
export NASPROXY_CACHE=${NASPROXY_CACHE:-$HERE/cache}
SPACE=${SPACE:-paper720-w64}   # search_spaces/paper720-w64.yaml: the W <= 64 half of paper720
SAMPLE=${SAMPLE:-100}          # seeded sample (--sample-seed 0) of that space; 360 = all of the half
read -r -a extra <<< "${SEARCH_ARGS:-}"  # e.g. --devices cuda:0 --workers 4
PROXIES=results/proxies
base=(--space "$SPACE" --storage "$STORE" -q "${extra[@]}")
common=("${base[@]}" --sample "$SAMPLE" --sample-seed 0)

# the ground truth's seeded random order of the sampled architectures: its first 30 are the random part
# (random.sample is prefix-stable, so the whole order keeps the same 30 first)
random_order() {
  python - "$SPACE" "$SAMPLE" <<'PY'
import random, sys
from nasproxy.spaces import load_space
ids = [c.arch_id for c in load_space(sys.argv[1]).sample(int(sys.argv[2]), seed=0)]
print("\n".join(random.Random(1).sample(ids, len(ids))))
PY
}

truth_random() {
  random_order | head -n 30 | sort
}

# the ground truth's second part: the union of every proxy's top 10 (in the journal) beyond the random 30,
# then, while those are fewer than 60 in all, the next architectures of the seeded random order. It waits
# while another worker still trains a proxy architecture, so that every proxy's top 10 is final.
truth_top() {
  python - "$STORE" $HERE/truth-random.txt <(random_order) <<'PY'
import sys
import time
import optuna
from nasproxy.search import completed_architectures
from nasproxy.search._progress import study_progress
from nasproxy.search._storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
while busy := [p.name for p in study_progress([sys.argv[1]]) if p.proxy != "full" and p.running]:
    print(f"== truth-top waits for {', '.join(busy)}", file=sys.stderr, flush=True)
    time.sleep(60)
storage = open_storage(sys.argv[1])
chosen = set(open(sys.argv[2]).read().split())
top = set()
for summary in optuna.get_all_study_summaries(storage):
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    if study.user_attrs["protocol"]["proxy"] == "full":
        continue
    done = completed_architectures(study)
    top |= set(sorted(done, key=lambda a: done[a].value, reverse=True)[:10])
extra = top - chosen
for arch in open(sys.argv[3]).read().split():
    if len(chosen | extra) >= 60:
        break
    extra.add(arch)
print("\n".join(sorted(extra - chosen)))
PY
}

# what a command prints becomes FILE only once it succeeds: a killed or failed run (truth-top may wait for
# hours) leaves the earlier list in place, never an empty or half-written one
write_to() {
  local file=$1
  shift
  "$@" > "$file.tmp" && mv "$file.tmp" "$file" && return 0
  rm -f "$file.tmp"
  return 1
}

# HOURS (optional): a wall-time budget for the whole script; each search gets what is left (--hours) and
# stops with exit status 75 when it runs out, which ends the script; running it again continues
started=$(date +%s)
search() {
  if [ -z "${HOURS:-}" ]; then
    nasproxy search "$@"
    return
  fi
  local left
  left=$(awk -v h="$HOURS" -v s="$started" -v n="$(date +%s)" 'BEGIN { printf "%.4f", h - (n - s) / 3600 }')
  if awk -v l="$left" 'BEGIN { exit !(l <= 0) }'; then
    echo "== the ${HOURS}-hour budget is spent; run the script again to continue" >&2
    exit 75
  fi
  nasproxy search "$@" --hours "$left"
}

# a proxy file the Table 1 run has not made yet: skip its stage (a later run of this script does it)
made() {
  [ -f "$1" ] && return 0
  echo "== skipped: $1 does not exist yet (results/fashion-mnist/table1.py makes it)"
  return 1
}

stage() {
  case "$1" in
    ours) search "${common[@]}" --proxy ours --proxy-file $PROXIES/fmnist-dc-ipc10-k10.pt ;;
    random) search "${common[@]}" --proxy random --proxy-file $PROXIES/fmnist-random-ipc10.pt ;;
    early-stopping) search "${common[@]}" --proxy early-stopping --proxy-file $PROXIES/fmnist-random-ipc10.pt ;;
    herding|k-center|forgetting) made $PROXIES/fmnist-$1-ipc10.pt || return 0
      search "${common[@]}" --proxy "$1" --proxy-file $PROXIES/fmnist-$1-ipc10.pt ;;
    dsa) made $PROXIES/fmnist-dsa-ipc10-k10.pt || return 0
      search "${common[@]}" --proxy dsa --proxy-file $PROXIES/fmnist-dsa-ipc10-k10.pt ;;
    dm) made $PROXIES/fmnist-dm-ipc10-k2000.pt || return 0
      search "${common[@]}" --proxy dm --proxy-file $PROXIES/fmnist-dm-ipc10-k2000.pt ;;
    synflow|naswot|snip|grad-norm|params) search "${common[@]}" --proxy "$1" ;;
    # a proxy plugin (examples/jacob_cov.py) into a journal of its own: the experiment's is only read
    jacob-cov) search "${common[@]/$STORE/$HERE/plugins.journal}" --proxy examples/jacob_cov.py:JacobCov ;;
    truth-random) write_to $HERE/truth-random.txt truth_random && search "${base[@]}" --proxy full --archs $HERE/truth-random.txt ;;
    truth-top) write_to $HERE/truth-top.txt truth_top && search "${base[@]}" --proxy full --archs $HERE/truth-top.txt ;;
    # the long ground truth: 16 epochs x 2 networks, scored at epochs 1, 2, 4 and 8 within each run (README,
    # "The long ground truth"); the random 30 first, the other 30 after
    truth-long) search "${base[@]}" --proxy full --epochs 16 --repeats 2 --archs $HERE/truth-random.txt ;;
    truth-long-top) search "${base[@]}" --proxy full --epochs 16 --repeats 2 --archs $HERE/truth-top.txt ;;
    # the augmentation control: random real images trained with DSA's augmentation, as DSA's and DM's
    # candidates were; its row tells the augmentation from the images
    augment-control) search "${common[@]}" --proxy random --proxy-file $PROXIES/fmnist-random-ipc10.pt \
        --augment color_crop_cutout_flip_scale_rotate ;;
    # the report's ground truth: the 16-epoch one over its 60 architectures (the random 30 and the proxies'
    # top 10s); the random 30 alone, the unbiased part, into random-30/
    report) report_args=(--dataset fashion-mnist --space "$SPACE" --storage "$STORE" --no-readme
        --storage "$HERE/plugins.journal")
      long=(--truth "${TRUTH:-fashion-mnist-paper720-w64-full-4cd2d30f2e}")
      nasproxy report "${report_args[@]}" "${long[@]}" --out $HERE
      # every proxy paired with the augmentation control: DSA against the same augmentation on real images
      nasproxy report "${report_args[@]}" "${long[@]}" --versus "random (with color_crop_cutout_flip_scale_rotate)" \
        --out $HERE/versus-augment
      nasproxy report "${report_args[@]}" "${long[@]}" --archs $HERE/truth-random.txt --out $HERE/random-30
      # the 4-epoch ground truth over the same 60
      nasproxy report "${report_args[@]}" --truth fashion-mnist-paper720-w64-full-36fd7e174a \
        --out $HERE/four-epoch-truth ;;
    *) echo "unknown stage $1" >&2; exit 2 ;;
  esac
}

stages=("$@")
# the proxy files of herding, k-center, forgetting, dsa and dm are made by results/fashion-mnist/table1.py
# every proxy before the ground truth: truth-top needs their rankings, and the report needs every proxy
# (the report stage trains nothing: it re-writes the tables and figures from the journal)
[ ${#stages[@]} -gt 0 ] || stages=(ours synflow naswot snip grad-norm params random early-stopping \
  herding k-center forgetting dsa dm jacob-cov augment-control truth-random truth-top truth-long truth-long-top report)
for s in "${stages[@]}"; do
  echo "== $s $(date -u +%FT%TZ)"
  start=$(date +%s)
  stage "$s"
  echo "== $s done in $(( $(date +%s) - start )) s"
done
