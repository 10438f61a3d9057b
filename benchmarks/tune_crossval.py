"""How well an LM weight tuned on dev carries over to speakers it was not tuned on.

Stage 5 picks the LM weight and word score with the lowest WER on the dev set,
and then reports dev WER at that point: an in-sample figure, which on AN4's 64
dev utterances flatters the LM (a grid of 49 points can fit 364 words' noise).
This script estimates the out-of-sample figure from dev alone, by
leave-one-speaker-out cross-validation: for each speaker, tune on the others'
utterances and decode that speaker's with the values chosen (ties broken as
stage 5 breaks them); the errors summed over the speakers are what a tuned LM
delivers on new speakers. Greedy's errors are printed beside them.

A speaker is the folder holding an utterance's audio (AN4's layout:
``wav/an4_clstk/<speaker>/<file>.sph``). Test data is refused, as by stage 5.

    python benchmarks/tune_crossval.py exp/an4/model.pt exp/an4/manifests/dev.jsonl --lm exp/an4/lm.arpa \\
        --letter-lm-scales 1 0,0.25,0.5,1     # one grid per value: 49 points, then 196

With ``--speeds 1,0.9,1.1`` every point (greedy too) is decoded at each speed
and the decodings are voted word by word, as stage 6 votes greedy decoding.
With ``--char-lm`` the LM is a character n-gram (``benchmarks/char_lm.py``) and
the search is lexicon-free.
"""

from __future__ import annotations

import argparse
import itertools
from collections import defaultdict
from pathlib import Path

from asr.checkpoint import ASRModel, load_model
from asr.cli import float_list
from asr.data import Utterance, read_manifest, refuse_test_data
from asr.decoding import BeamSearchDecoder, BeamSearchOptions, tuned_options
from asr.scoring import score
from asr.tune import LM_WEIGHTS, WORD_SCORES, Point, decode_grid, score_grid
from asr.voting import vote
from char_lm import CharLMDecoder


def voted_grid(
    model: ASRModel,
    utterances: list[Utterance],
    lm_path: str,
    points: list[Point | None],
    options: BeamSearchOptions,
    speeds: list[float],
    search: type[BeamSearchDecoder] = BeamSearchDecoder,
) -> tuple[dict[str, str], dict[Point | None, dict[str, str]]]:
    """:func:`asr.tune.decode_grid` at each speed, each point's decodings voted word by word (the first speed breaks ties)."""
    by_speed = [decode_grid(model, utterances, lm_path, points, options, speed, search) for speed in speeds]
    references = by_speed[0][0]
    hypotheses = {
        point: {utt_id: vote([decoded[point][utt_id] for _, decoded in by_speed]) for utt_id in references}
        for point in points
    }
    return references, hypotheses


def by_speaker(utterances: list[Utterance], references: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each speaker's references (readable files only); a speaker is the folder holding the audio."""
    speakers: dict[str, dict[str, str]] = defaultdict(dict)
    for utterance in utterances:
        if utterance.utt_id in references:
            speakers[Path(utterance.audio_filepath).parent.name][utterance.utt_id] = references[utterance.utt_id]
    return speakers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("manifest", help="dev manifest (test data is refused)")
    parser.add_argument("--lm", required=True)
    parser.add_argument("--lm-weights", type=float_list, default=LM_WEIGHTS)
    parser.add_argument("--word-scores", type=float_list, default=WORD_SCORES)
    parser.add_argument(
        "--letter-lm-scales", type=float_list, nargs="+", default=[[1.0]], help="one grid per comma-separated list"
    )
    parser.add_argument("--speeds", type=float_list, default=[1.0], help="decode at each and vote, the first breaking ties")
    parser.add_argument("--char-lm", action="store_true", help="--lm is a character n-gram: lexicon-free search")
    args = parser.parse_args()

    utterances = read_manifest(args.manifest)
    refuse_test_data(args.manifest, utterances)
    model = load_model(args.model)
    scales = sorted({scale for grid in args.letter_lm_scales for scale in grid})
    points = [None, *itertools.product(args.lm_weights, args.word_scores, scales)]  # None: greedy
    search = CharLMDecoder if args.char_lm else BeamSearchDecoder
    options = tuned_options({"lexicon": not args.char_lm})
    references, hypotheses = voted_grid(model, utterances, args.lm, points, options, args.speeds, search)
    speakers = by_speaker(utterances, references)

    speeds = ",".join(f"{speed:g}" for speed in args.speeds)
    print(f"{args.model}: {len(references)} dev utterances, {len(speakers)} speakers, speeds {speeds}")
    print(f"greedy: {score(references, hypotheses[None]).word_errors} word errors")
    for letter_scales in args.letter_lm_scales:
        grid = {p: hypotheses[p] for p in itertools.product(args.lm_weights, args.word_scores, letter_scales)}
        in_sample = score_grid(references, grid)[0]
        held_out_errors = 0
        choices = []
        for speaker, held_out in sorted(speakers.items()):
            others = {
                utt_id: text for name, refs in speakers.items() if name != speaker for utt_id, text in refs.items()
            }
            best = score_grid(others, grid)[0]
            point = (best.lm_weight, best.word_score, best.letter_lm_scale)
            held_out_errors += score_grid(held_out, {point: grid[point]})[0].word_errors
            choices.append(f"{speaker} {point[0]:g}/{point[1]:g}/{point[2]:g}")
        print(
            f"letter scales {','.join(f'{s:g}' for s in letter_scales)} ({len(grid)} points):"
            f" in sample {in_sample.word_errors} word errors (at {in_sample.lm_weight:g}/{in_sample.word_score:g}),"
            f" leave-one-speaker-out {held_out_errors}"
            f" (chosen weight/score/letter scale: {'; '.join(choices)})"
        )


if __name__ == "__main__":
    main()
