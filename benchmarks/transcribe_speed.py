"""How fast ``asr transcribe`` is: audio duration over wall time, for one process, model load included.

    python benchmarks/transcribe_speed.py exp/an4/model.pt --lm exp/an4/lm.arpa

runs ``asr transcribe`` on every file of a folder (AN4's test set by default)
greedily, and by beam search with the LM when ``--lm`` is given, and prints
the times-real-time figure of each. Bars (issue 4, 2-core CPU): greedy 100x,
beam with the LM 30x.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import soundfile

from asr.inputs import expand_inputs


def run(model: str, audio: str, extra: list[str]) -> float:
    """Wall seconds of one ``asr transcribe`` process over ``audio``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "asr", "transcribe", model, audio, *extra], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--audio", default="data/an4/wav/an4test_clstk", help="a folder, pattern or manifest")
    parser.add_argument("--lm", help="also time beam search with this ARPA language model")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    files, problems = expand_inputs([args.audio])
    if problems or not files:
        sys.exit(f"error: {args.audio}: no audio to time")
    seconds = sum(soundfile.info(f).duration for f in files)
    print(f"{len(files)} files, {seconds:.1f} s of audio, in {Path(args.audio)}")
    methods = [("greedy", [])] + ([("beam + LM", ["--lm", args.lm])] if args.lm else [])
    for name, extra in methods:
        wall = run(args.model, args.audio, [*extra, "--device", args.device])
        print(f"{name}: {wall:.1f} s wall, real-time factor {wall / seconds:.4f}, {seconds / wall:.0f}x real time")


if __name__ == "__main__":
    main()
