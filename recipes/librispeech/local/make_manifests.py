"""Stage 1: a JSON-lines manifest straight from LibriSpeech's FLAC files and transcripts (no conversion pass).

Each chapter folder ``<speaker>/<chapter>/`` holds ``<speaker>-<chapter>.trans.txt``
(``<utterance id> <TRANSCRIPT>`` a line) beside ``<utterance id>.flac``. The
manifest is written as it is read, one chapter at a time, so its size never
has to fit in memory. An unreadable file or a transcript line without audio
is reported on one line and left out.

    python make_manifests.py --out train.jsonl SUBSET_DIR [SUBSET_DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from asr.audio import AudioError
from asr.data import Utterance, make_utterance, write_manifest
from asr.text import TokenizerError


def chapter_lines(subset_dir: Path) -> Iterator[tuple[Path, str]]:
    """``(flac path, transcript)`` for every transcript line, in sorted speaker, chapter, line order."""
    for transcript in sorted(subset_dir.glob("*/*/*.trans.txt")):
        for line in transcript.read_text(encoding="utf-8").splitlines():  # the last line may lack its newline
            if line.strip():
                utt_id, _, text = line.strip().partition(" ")
                yield transcript.parent / f"{utt_id}.flac", text


def utterances(subset_dirs: list[Path], counts: dict[str, int]) -> Iterator[Utterance]:
    for subset_dir in subset_dirs:
        for flac, text in chapter_lines(subset_dir.resolve()):  # absolute paths: the manifest can move
            try:
                utterance = make_utterance(flac, text)
            except (AudioError, TokenizerError) as error:
                print(f"warning: left out {error}", file=sys.stderr)
                counts["left out"] += 1
                continue
            counts["seconds"] += utterance.duration
            yield utterance


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("subset_dirs", nargs="+", type=Path, help="e.g. data/LibriSpeech/train-clean-100")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    for subset_dir in args.subset_dirs:
        if not subset_dir.is_dir():
            print(f"error: {subset_dir}: no such folder", file=sys.stderr)
            return 2
    counts = {"left out": 0, "seconds": 0.0}
    written = write_manifest(args.out, utterances(args.subset_dirs, counts))
    left_out = f"; left out {counts['left out']}" if counts["left out"] else ""
    print(f"wrote {args.out}: {written} utterances, {counts['seconds'] / 3600:.2f} hours{left_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
