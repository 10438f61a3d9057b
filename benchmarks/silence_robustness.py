"""WER of a model on a manifest's utterances as they are, and with room tone or digital silence before or after each.

Corpora of tightly cut utterances (AN4's) teach a model that speech starts at
once; real recordings have a second or two of room before and after, and files
cut or made by software often start and end in digital silence (exact zeros).
The room tone put beside an utterance is the quieter edge (first or last
0.1 s) of another utterance in the manifest, tiled forwards and backwards so
that it has no clicks. (Until 2026-11-23 this script joined the last 0.2 s of
six utterances: those tails still hold the end of the speech, so the model
rightly heard letters in them.)

    python benchmarks/silence_robustness.py exp/an4/model.pt exp/an4/manifests/dev.jsonl
"""

from __future__ import annotations

import argparse

import torch

import asr
from asr.audio import load_audio
from asr.augment import SilencePadding, background_noise, reflect_tile
from asr.data import read_manifest
from asr.scoring import score

SAMPLE_RATE = 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("manifest")
    parser.add_argument("--seconds", type=float, default=1.2, help="room tone or silence added")
    parser.add_argument("--lm", help="decode with beam search and this ARPA language model")
    args = parser.parse_args()

    model = asr.load(args.model, device="cpu", lm=args.lm)
    utterances = read_manifest(args.manifest)
    waves = [load_audio(u.audio_filepath, SAMPLE_RATE) for u in utterances]
    length = int(args.seconds * SAMPLE_RATE)
    edge = int(SilencePadding.EDGE_SECONDS * SAMPLE_RATE)
    # Each utterance gets the room tone of the utterance seven places on (another speaker, mostly).
    tones = [reflect_tile(background_noise(waves[(i + 7) % len(waves)], edge), length) for i in range(len(waves))]
    silence = torch.zeros(length)
    variants = {
        "as is": lambda i, w: w,
        "room tone before": lambda i, w: torch.cat([tones[i], w]),
        "room tone after": lambda i, w: torch.cat([w, tones[i]]),
        "digital silence before": lambda i, w: torch.cat([silence, w]),
        "digital silence after": lambda i, w: torch.cat([w, silence]),
    }
    references = {str(i): u.text for i, u in enumerate(utterances)}
    for name, change in variants.items():
        transcripts = model.transcribe([change(i, w).numpy() for i, w in enumerate(waves)], sample_rate=SAMPLE_RATE)
        hypotheses = {str(i): t.text for i, t in enumerate(transcripts)}
        print(f"{name}: WER {score(references, hypotheses).wer:.2f}% ({len(utterances)} utterances, {args.seconds:g} s)", flush=True)


if __name__ == "__main__":
    main()
