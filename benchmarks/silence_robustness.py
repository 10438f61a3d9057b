"""WER of a model on a manifest's utterances as they are, and with a stretch of room tone before or after each.

Corpora of tightly cut utterances (AN4's) teach a model that speech starts at
once; real recordings have a second or two of room before and after. The room
tone here is the last 0.2 s of the first six utterances of the manifest, joined
(so it is not the utterance's own background, which training's silence
padding uses), repeated to ``--seconds``.

    python benchmarks/silence_robustness.py exp/an4/model.pt exp/an4/manifests/dev.jsonl
"""

from __future__ import annotations

import argparse

import torch

import asr
from asr.audio import load_audio
from asr.data import read_manifest
from asr.scoring import score

SAMPLE_RATE = 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("manifest")
    parser.add_argument("--seconds", type=float, default=1.2, help="room tone added")
    parser.add_argument("--lm", help="decode with beam search and this ARPA language model")
    args = parser.parse_args()

    model = asr.load(args.model, device="cpu", lm=args.lm)
    utterances = read_manifest(args.manifest)
    waves = [load_audio(u.audio_filepath, SAMPLE_RATE) for u in utterances]
    tone = torch.cat([w[-SAMPLE_RATE // 5 :] for w in waves[:6]])
    tone = tone.repeat(int(args.seconds * SAMPLE_RATE) // tone.numel() + 1)[: int(args.seconds * SAMPLE_RATE)]
    references = {str(i): u.text for i, u in enumerate(utterances)}
    variants = {"as is": lambda w: w, "room tone before": lambda w: torch.cat([tone, w]), "room tone after": lambda w: torch.cat([w, tone])}
    for name, change in variants.items():
        transcripts = model.transcribe([change(w).numpy() for w in waves], sample_rate=SAMPLE_RATE)
        hypotheses = {str(i): t.text for i, t in enumerate(transcripts)}
        print(f"{name}: WER {score(references, hypotheses).wer:.2f}% ({len(utterances)} utterances, {args.seconds:g} s of room tone)", flush=True)


if __name__ == "__main__":
    main()
