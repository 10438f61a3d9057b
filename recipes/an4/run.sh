#!/usr/bin/env bash
# AN4 recipe: data, manifests, statistics, training, language model, tuning,
# decoding (greedy and beam search with the LM), scoring.
#
#   bash recipes/an4/run.sh [--stage N] [--stop-stage M] [--an4-archive PATH]
#                           [--exp-dir DIR] [--data-dir DIR] [--config YAML]
#                           [--subset N] [--train-set KEY=VALUE]... [--lm-order N]
#                           [--greedy-speeds LIST] [--dev-speakers LIST]
#
# Run from the repository root. Every stage is idempotent: it skips work whose
# output is already there (training resumes from its last checkpoint).
set -euo pipefail

stage=0
stop_stage=100
an4_archive="${AN4_ARCHIVE:-}"
data_dir=data
exp_dir=exp/an4
config=recipes/an4/conf/train.yaml
subset=0          # keep only the first N utterances of each set (smoke tests)
train_set=()      # config overrides for statistics and training, e.g. optim.epochs=2
lm_order=3
dev_speakers=     # training speakers held out as dev, comma-separated (empty: local/make_manifests.py's five)
greedy_speeds=1,0.9,1.1  # greedy decoding votes over these speeds (dev errors 91 -> 87 over three seeds; README, row AC)

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --an4-archive) an4_archive="$2"; shift 2 ;;
    --data-dir) data_dir="$2"; shift 2 ;;
    --exp-dir) exp_dir="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --subset) subset="$2"; shift 2 ;;
    --train-set) train_set+=(--set "$2"); shift 2 ;;
    --lm-order) lm_order="$2"; shift 2 ;;
    --greedy-speeds) greedy_speeds="$2"; shift 2 ;;
    --dev-speakers) dev_speakers="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

log() { echo "[$(date '+%H:%M:%S')] $*"; }
manifests="$exp_dir/manifests"
local_dir="$(dirname "$0")/local"
mkdir -p "$exp_dir"

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "stage 0: data"
  python "$local_dir/get_an4.py" --data-dir "$data_dir" ${an4_archive:+--archive "$an4_archive"}
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: manifests"
  python "$local_dir/make_manifests.py" --an4-dir "$data_dir/an4" --out-dir "$manifests" --subset "$subset" \
    ${dev_speakers:+--dev-speakers "$dev_speakers"}
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: feature statistics and vocabulary"
  asr stats --config "$config" --manifest "$manifests/train.jsonl" --out "$exp_dir/stats.json" "${train_set[@]}"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: training"
  asr train --config "$config" --train "$manifests/train.jsonl" --dev "$manifests/dev.jsonl" \
    --stats "$exp_dir/stats.json" --exp-dir "$exp_dir" --resume "${train_set[@]}"
  log "model: $exp_dir/model.pt"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: word $lm_order-gram language model from the training transcripts"
  asr lm --manifest "$manifests/train.jsonl" --order "$lm_order" --out "$exp_dir/lm.arpa"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: LM weight and word score, tuned on dev (stored in model.pt)"
  asr tune "$exp_dir/model.pt" "$manifests/dev.jsonl" --lm "$exp_dir/lm.arpa" --out-dir "$exp_dir/tune"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: decoding, greedy (voted over speeds $greedy_speeds) and beam search with the LM"
  for set in dev test; do
    asr decode "$exp_dir/model.pt" "$manifests/$set.jsonl" --out-dir "$exp_dir/decode_${set}_greedy" \
      --speeds "$greedy_speeds"
    asr decode "$exp_dir/model.pt" "$manifests/$set.jsonl" --out-dir "$exp_dir/decode_${set}_beam_lm" --lm "$exp_dir/lm.arpa"
  done
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  log "stage 7: scoring"
  rm -f "$exp_dir/results.json"
  for set in dev test; do
    for method in greedy beam_lm; do
      out="$exp_dir/decode_${set}_$method"
      asr score "$out/ref.txt" "$out/hyp.txt" --name "$set" --method "$method" \
        --details-dir "$out" --results "$exp_dir/results.json" > "$out/score.txt"
    done
  done
  log "results: $exp_dir/results.json"
  cat "$exp_dir"/decode_{dev,test}_{greedy,beam_lm}/score.txt
fi
