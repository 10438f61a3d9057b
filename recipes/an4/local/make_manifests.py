"""Stage 1: JSON-lines manifests for AN4's train, dev and test sets.

Dev is a handful of speakers held out of the official training set (never the
test set), so that tuning and picking the best epoch never see test speakers.
Every file is checked: unreadable or empty audio and transcripts that
normalize to nothing are reported and left out, with a count.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from asr.audio import AudioError
from asr.data import Utterance, make_utterance, write_manifest
from asr.text import TokenizerError

# Speakers of the official training set held out as dev: 64 of its 948 utterances.
# ``--dev-speakers`` holds out others instead: cross-validation over training
# speakers, a larger sample of new voices than one dev set of five gives.
DEV_SPEAKERS = ("fjdn", "fmjd", "mbmg", "mjgk", "mskh")
_LINE = re.compile(r"^(?P<text>.*)\((?P<utt>[^()\s]+)\)\s*$")


def read_split(an4_dir: Path, split: str) -> list[tuple[Path, str]]:
    """``(audio path, raw transcript)`` pairs of ``an4_train`` or ``an4_test``, in file-id order."""
    transcripts = {}
    for line in (an4_dir / "etc" / f"{split}.transcription").read_text().splitlines():
        match = _LINE.match(line)
        if match:
            text = match["text"].replace("<s>", " ").replace("</s>", " ")
            transcripts[match["utt"]] = text
    pairs = []
    for file_id in (an4_dir / "etc" / f"{split}.fileids").read_text().split():
        utt = Path(file_id).name
        pairs.append((an4_dir / "wav" / f"{file_id}.sph", transcripts.get(utt, "")))
    return pairs


def checked(pairs: list[tuple[Path, str]], name: str) -> list[Utterance]:
    utterances, problems = [], 0
    for path, transcript in pairs:
        try:
            utterances.append(make_utterance(path, transcript))
        except (AudioError, TokenizerError) as error:
            print(f"warning: {name}: left out {error}", file=sys.stderr)
            problems += 1
    if problems:
        print(f"{name}: left out {problems} of {len(pairs)} utterances")
    return utterances


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--an4-dir", default="data/an4")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--subset", type=int, default=0, help="keep only the first N utterances of each set (smoke tests)")
    parser.add_argument(
        "--dev-speakers", default=",".join(DEV_SPEAKERS), help="comma-separated training speakers held out as dev"
    )
    args = parser.parse_args()
    an4_dir, out_dir = Path(args.an4_dir).resolve(), Path(args.out_dir)
    train_pairs = read_split(an4_dir, "an4_train")
    dev_speakers = set(filter(None, args.dev_speakers.split(",")))
    unknown = dev_speakers - {path.parent.name for path, _ in train_pairs}
    if not dev_speakers:
        print("error: --dev-speakers: no speaker named", file=sys.stderr)
        return 2
    if unknown:
        named = ", ".join(sorted(unknown))
        print(f"error: --dev-speakers: {named}: not a speaker of {an4_dir / 'etc/an4_train.fileids'}", file=sys.stderr)
        return 2
    is_dev = lambda pair: pair[0].parent.name in dev_speakers  # noqa: E731
    sets = {
        "train": [p for p in train_pairs if not is_dev(p)],
        "dev": [p for p in train_pairs if is_dev(p)],
        "test": read_split(an4_dir, "an4_test"),
    }
    for name, pairs in sets.items():
        if args.subset:
            pairs = pairs[: args.subset]
        utterances = checked(pairs, name)
        count = write_manifest(out_dir / f"{name}.jsonl", utterances)
        hours = sum(u.duration for u in utterances) / 3600
        print(f"wrote {out_dir / f'{name}.jsonl'}: {count} utterances, {hours:.2f} hours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
