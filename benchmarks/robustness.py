"""WER of a model on a manifest's utterances as they are and as other recordings would have them.

A model is scored on recordings it never saw, made with other microphones, in
other rooms, at other levels and rates. Each condition below changes every
utterance of the manifest in one way, and the script prints the WER of each:

- room tone or digital silence (exact zeros) before or after the speech.
  Corpora of tightly cut utterances (AN4's) teach a model that speech starts
  at once; real recordings have a second or two of room, and files cut or made
  by software often start and end in digital silence. The room tone is the
  quieter edge (first or last 0.1 s) of another utterance in the manifest,
  tiled forwards and backwards so that it has no clicks;
- white noise at a signal-to-noise ratio of 20 and 10 dB (over the whole
  utterance's power);
- level: 30 dB quieter, then rounded to 16 bits as a quiet recording would be
  stored; 20 dB louder with every sample clipped to full scale;
- a telephone's band: downsampled to 8 kHz and given to the model at that
  rate (the model resamples it back, so everything above 4 kHz is gone);
- reverberation: convolved with a synthetic room response (exponentially
  decaying noise, reverberation times of 0.3 and 0.6 s).

Every random draw is seeded, so two runs print the same figures. The noise,
levels, band and rooms are made by the functions of ``asr.augment`` that the
training augmentations use (with other draws): for a model trained with those,
the figures say how well it copes within their families, not with real rooms
and real noise.

    python benchmarks/robustness.py exp/an4/model.pt exp/an4/manifests/dev.jsonl
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

import asr
from asr.audio import load_audio, resample
from asr.augment import (
    TELEPHONE_RATE,
    SilencePadding,
    background_noise,
    coloured_noise,
    reflect_tile,
    reverberant,
    room_response,
    stored_16_bit,
    with_noise,
)
from asr.data import read_manifest
from asr.scoring import score

SAMPLE_RATE = 16000


def conditions(waves: list[torch.Tensor], seconds: float) -> dict[str, tuple[Callable[[int, torch.Tensor], torch.Tensor], int]]:
    """Each condition's name, its change to utterance ``i``, and the sample rate the model is given."""
    length = int(seconds * SAMPLE_RATE)
    edge = int(SilencePadding.EDGE_SECONDS * SAMPLE_RATE)
    # Each utterance gets the room tone of the utterance seven places on (another speaker, mostly).
    tones = [reflect_tile(background_noise(waves[(i + 7) % len(waves)], edge), length) for i in range(len(waves))]
    silence = torch.zeros(length)
    generator = torch.Generator().manual_seed(0)
    responses = {rt60: room_response(rt60, SAMPLE_RATE, generator) for rt60 in (0.3, 0.6)}
    white = [coloured_noise(w.numel(), 0.0, generator) for w in waves]
    return {
        "as is": (lambda i, w: w, SAMPLE_RATE),
        f"room tone {seconds:g} s before": (lambda i, w: torch.cat([tones[i], w]), SAMPLE_RATE),
        f"room tone {seconds:g} s after": (lambda i, w: torch.cat([w, tones[i]]), SAMPLE_RATE),
        f"digital silence {seconds:g} s before": (lambda i, w: torch.cat([silence, w]), SAMPLE_RATE),
        f"digital silence {seconds:g} s after": (lambda i, w: torch.cat([w, silence]), SAMPLE_RATE),
        "white noise, SNR 20 dB": (lambda i, w: with_noise(w, white[i], 20), SAMPLE_RATE),
        "white noise, SNR 10 dB": (lambda i, w: with_noise(w, white[i], 10), SAMPLE_RATE),
        "30 dB quieter, 16-bit": (lambda i, w: stored_16_bit(w * 10 ** (-30 / 20)), SAMPLE_RATE),
        "20 dB louder, clipped": (lambda i, w: stored_16_bit(w * 10 ** (20 / 20)), SAMPLE_RATE),
        "telephone band (8 kHz)": (lambda i, w: resample(w, SAMPLE_RATE, TELEPHONE_RATE), TELEPHONE_RATE),
        "reverberation, RT60 0.3 s": (lambda i, w: reverberant(w, responses[0.3]), SAMPLE_RATE),
        "reverberation, RT60 0.6 s": (lambda i, w: reverberant(w, responses[0.6]), SAMPLE_RATE),
    }


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
    references = {str(i): u.text for i, u in enumerate(utterances)}
    for name, (change, rate) in conditions(waves, args.seconds).items():
        audio = [change(i, w).numpy() for i, w in enumerate(waves)]
        transcripts = model.transcribe(audio, sample_rate=rate)
        hypotheses = {str(i): t.text for i, t in enumerate(transcripts)}
        print(f"{name}: WER {score(references, hypotheses).wer:.2f}% ({len(utterances)} utterances)", flush=True)


if __name__ == "__main__":
    main()
