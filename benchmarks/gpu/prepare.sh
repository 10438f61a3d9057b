#!/usr/bin/env bash
# Packs .gpu_kit/ (git-ignored) for benchmarks/gpu/check.sh, which a session lent a GPU runs in one
# call of the device tool, whose working tree may carry at most 64 MiB:
#   - the wheels the GPU machine's Python 3.12 lacks (soundfile, jiwer, flashlight-text, webdataset and
#     what they need; torch and torchaudio 2.11.0 are there), about 6 MB;
#   - AN4 with the recipe's default split, as FLAC (lossless: the same samples) and manifests: 43 MB,
#     where the SPHERE archive's 61 MB would not fit beside the wheels.
#
#   bash benchmarks/gpu/prepare.sh [--an4-archive PATH]      # here, on the CPU machine
#   then, through the device tool: command "bash benchmarks/gpu/check.sh", carry [".gpu_kit"]
set -euo pipefail

kit=.gpu_kit
archive_option=()
[ "${1:-}" = "--an4-archive" ] && archive_option=(--an4-archive "$2")
log() { echo "[$(date '+%H:%M:%S')] $*"; }

rm -rf "$kit" && mkdir -p "$kit/whl"
log "AN4: data and the default split (the recipe's stages 0 and 1)"
bash recipes/an4/run.sh --stop-stage 1 --exp-dir "$kit/split" "${archive_option[@]}"
log "AN4 as FLAC, manifests with paths relative to themselves"
python - "$kit/split/manifests" "$kit/an4" <<'PY'
import json, os, sys
from pathlib import Path

import soundfile

from asr.data import read_manifest

split, out = Path(sys.argv[1]), Path(sys.argv[2])
(out / "manifests").mkdir(parents=True, exist_ok=True)
for name in ("train", "dev", "test"):
    with (out / "manifests" / f"{name}.jsonl").open("w") as lines:
        for utterance in read_manifest(split / f"{name}.jsonl"):
            sphere = Path(utterance.audio_filepath)
            flac = out / "wav" / sphere.parent.parent.name / sphere.parent.name / f"{sphere.stem}.flac"
            flac.parent.mkdir(parents=True, exist_ok=True)
            samples, rate = soundfile.read(sphere, dtype="int16")
            soundfile.write(flac, samples, rate, format="FLAC", subtype="PCM_16")
            entry = {"audio_filepath": os.path.relpath(flac, out / "manifests"), "duration": utterance.duration, "text": utterance.text}
            lines.write(json.dumps(entry) + "\n")
PY
cp data/an4/LICENSE "$kit/an4/LICENSE" 2>/dev/null || true
rm -rf "$kit/split"
log "wheels for the GPU machine's Python 3.12"
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d "$kit/whl" soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 jiwer==4.0.0 rapidfuzz==3.14.6 \
  flashlight-text==0.0.7 webdataset==1.0.2 braceexpand==0.1.7
size=$(du -sm "$kit" | cut -f1)
log "$kit: $size MB ($(ls "$kit/whl" | wc -l) wheels, $(cat "$kit"/an4/manifests/*.jsonl | wc -l) utterances); the device tool carries 64 MiB with the repository"
