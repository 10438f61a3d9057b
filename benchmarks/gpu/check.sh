#!/usr/bin/env bash
# Issue 5's and 6's GPU figures in one call of the device tool (a session lent a GPU has 15 minutes of
# device time, the machine's start included), after benchmarks/gpu/prepare.sh packed .gpu_kit/ here:
#
#   run(command="bash benchmarks/gpu/check.sh", carry=[".gpu_kit"], timeout_s=580)
#
# Prints, and leaves in $OUT (log.txt, profile_5x1024_bf16.txt, an4_results.json, an4_metrics.jsonl):
#   1. training and inference throughput, peak memory and FLOP utilisation of the 5x1024 BiLSTM in
#      bf16 (recipes/librispeech/conf/train_960h.yaml's model; issue 5's 5,000 s of audio per second),
#      with torch.profiler's table of where a training step's time goes;
#   2. the same for the 100-hour configuration (5x512), which sizes its epochs (issue 6);
#   3. the AN4 recipe from its statistics stage on, its training timed (issue 5: at most 3 minutes,
#      to the CPU's test WER).
# A dry run on the CPU (tiny: a few steps, one epoch of 40 utterances): DEVICE=cpu SMOKE=1 bash benchmarks/gpu/check.sh
set -uo pipefail

device=${DEVICE:-cuda}
smoke=${SMOKE:-0}
out=${OUT:-/tmp/gpu_check}
kit=.gpu_kit
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1

if [ "$device" = cuda ]; then  # the GPU machine: its own torch, our other dependencies from the kit's wheels
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$kit"/whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
  mkdir -p /tmp/bin && printf '#!/bin/sh\nexec python3 -m asr "$@"\n' > /tmp/bin/asr && chmod +x /tmp/bin/asr
  export PATH="/tmp/bin:$PATH"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
fi
export PYTHONUNBUFFERED=1
log() { echo "[$(date '+%H:%M:%S')] $*"; }
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'

steps=20 tiny=()
if [ "$smoke" = 1 ]; then
  steps=2
  tiny=(--set model.hidden_size=64 --set model.num_layers=2 --set optim.max_batch_frames=3000)
fi
log "1. the 5x1024 BiLSTM (train_960h.yaml), bf16"
asr bench --config recipes/librispeech/conf/train_960h.yaml --device "$device" --precision bf16 --steps "$steps" \
  --profile "$out/profile_5x1024_bf16.txt" "${tiny[@]}"
log "2. the 100-hour configuration (train_100h.yaml: 5x512), bf16"
asr bench --config recipes/librispeech/conf/train_100h.yaml --device "$device" --precision bf16 --steps "$steps" "${tiny[@]}"

log "3. the AN4 recipe from stage 2 (statistics) on"
exp=/tmp/an4_gpu
rm -rf "$exp" && mkdir -p "$exp/manifests"
python3 - "$PWD/$kit/an4/manifests" "$exp/manifests" "$smoke" <<'PY'
import json, sys
from pathlib import Path

from asr.data import read_manifest

kit, exp, smoke = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
for name in ("train", "dev", "test"):
    utterances = read_manifest(kit / f"{name}.jsonl")[: 40 if smoke else None]  # audio paths made absolute
    with (exp / f"{name}.jsonl").open("w") as lines:
        lines.writelines(json.dumps({"audio_filepath": u.audio_filepath, "duration": u.duration, "text": u.text}) + "\n" for u in utterances)
PY
epochs=()
[ "$smoke" = 1 ] && epochs=(--train-set optim.epochs=1)
time timeout 420 bash recipes/an4/run.sh --stage 2 --exp-dir "$exp" "${epochs[@]}"  # device auto: the GPU
cp "$exp/results.json" "$out/an4_results.json" 2>/dev/null
cp "$exp/metrics.jsonl" "$out/an4_metrics.jsonl" 2>/dev/null
log "done"
