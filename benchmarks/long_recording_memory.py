"""Peak memory of ``asr transcribe`` as recordings grow: 1, 10 and 30 minutes by default.

    python benchmarks/long_recording_memory.py exp/an4/model.pt

joins utterances (AN4's test set by default) end to end into one WAV file of
each length, transcribes each in a fresh process, and prints the process's
peak resident memory, its speed, and the WER against the joined transcripts
when ``--audio`` is a manifest (else how many words came out). Windows are
read from the file one at a time, so the peak should not grow with the length.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from asr.audio import load_audio
from asr.data import read_manifest
from asr.inputs import expand_inputs
from asr.scoring import score

# Run in the child: transcribe, then report the peak resident set (Linux: ru_maxrss is in KiB).
CHILD = """
import resource, sys
from asr.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)
sys.exit(code)
"""


def write_joined(files: list[str], texts: list[str], minutes: float, path: Path, sample_rate: int = 16000) -> tuple[float, str]:
    """Write ``files`` end to end (repeating them) until ``minutes``; the seconds written and their joined texts."""
    target = int(minutes * 60 * sample_rate)
    written, reference = 0, []
    with soundfile.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as out:
        while written < target:
            for name, text in zip(files, texts):
                samples = load_audio(name, sample_rate).numpy()
                out.write(np.clip(samples, -1, 1))
                written += len(samples)
                reference.append(text)
                if written >= target:
                    break
    return written / sample_rate, " ".join(reference)


def measure(model: str, audio: Path, extra: list[str]) -> dict:
    """Peak memory (MB), wall time and word count of one ``asr transcribe`` process."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "transcribe", model, str(audio), "--format", "jsonl", *extra],
        capture_output=True, text=True, check=True,
    )
    wall = time.perf_counter() - start
    transcript = json.loads(result.stdout)
    return {"peak_mb": int(result.stderr.strip().splitlines()[-1]), "wall": wall, "text": transcript["text"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--audio", default="data/an4/wav/an4test_clstk", help="utterances to join: folder, pattern or manifest")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30])
    parser.add_argument("--json", action="store_true", help="print one JSON line per length instead of a sentence")
    parser.add_argument("--device", default="cpu")
    args, extra = parser.parse_known_args()  # anything else goes to asr transcribe (--lm ...)
    if args.audio.endswith(".jsonl"):  # a manifest: its transcripts give the joined recording's WER
        utterances = read_manifest(args.audio)
        files, texts = [u.audio_filepath for u in utterances], [u.text for u in utterances]
    else:
        files, problems = expand_inputs([args.audio])
        if problems or not files:
            sys.exit(f"error: {args.audio}: no audio to join")
        texts = [""] * len(files)
    with tempfile.TemporaryDirectory() as folder:
        for minutes in args.minutes:
            path = Path(folder) / f"{minutes:g}min.wav"
            seconds, reference = write_joined(files, texts, minutes, path)
            figures = measure(args.model, path, ["--device", args.device, *extra])
            path.unlink()
            text = figures.pop("text")
            if reference.strip():
                figures["wer"] = round(score({"joined": reference}, {"joined": text}).wer, 2)
            else:
                figures["words"] = len(text.split())
            if args.json:
                print(json.dumps({"minutes": minutes, "seconds": round(seconds, 1), **figures}), flush=True)
            else:
                outcome = f"WER {figures['wer']:.2f}% against the joined transcripts" if "wer" in figures else f"{figures['words']} words"
                print(
                    f"{minutes:g} min: peak resident memory {figures['peak_mb']} MB, {figures['wall']:.1f} s wall"
                    f" ({seconds / figures['wall']:.0f}x real time), {outcome}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
