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
"""

from __future__ import annotations

import argparse
import itertools
from collections import defaultdict
from pathlib import Path

from asr.checkpoint import load_model
from asr.data import read_manifest, refuse_test_data
from asr.decoding import tuned_options
from asr.scoring import score
from asr.transcribe import decode, model_outputs
from asr.tune import decode_grid, score_grid


def float_list(text: str) -> list[float]:
    return [float(value) for value in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("manifest", help="dev manifest (test data is refused)")
    parser.add_argument("--lm", required=True)
    parser.add_argument("--lm-weights", type=float_list, default=[0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--word-scores", type=float_list, default=[-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    parser.add_argument(
        "--letter-lm-scales", type=float_list, nargs="+", default=[[1.0]], help="one grid per comma-separated list"
    )
    args = parser.parse_args()

    utterances = read_manifest(args.manifest)
    refuse_test_data(args.manifest, utterances)
    model = load_model(args.model)
    speakers = defaultdict(set)
    for utterance in utterances:
        speakers[Path(utterance.audio_filepath).parent.name].add(utterance.utt_id)

    greedy = {}
    for batch, log_probs, lengths in model_outputs(model, utterances):
        for i, text in zip(batch.indices, decode(model, log_probs, lengths)):
            greedy[utterances[i].utt_id] = text

    scales = sorted({scale for grid in args.letter_lm_scales for scale in grid})
    points = list(itertools.product(args.lm_weights, args.word_scores, scales))
    references, hypotheses = decode_grid(model, utterances, args.lm, points, tuned_options({}))

    def subset(ids: set[str]) -> dict[str, str]:
        return {utt_id: references[utt_id] for utt_id in ids if utt_id in references}

    print(f"{args.model}: {len(references)} dev utterances, {len(speakers)} speakers")
    print(f"greedy: {score(references, greedy).word_errors} word errors")
    for letter_scales in args.letter_lm_scales:
        grid_points = {p: hypotheses[p] for p in itertools.product(args.lm_weights, args.word_scores, letter_scales)}
        best = score_grid(references, grid_points)[0]
        best_point = (best.lm_weight, best.word_score, best.letter_lm_scale)
        in_sample_errors = score(references, grid_points[best_point]).word_errors
        held_out_errors = 0
        choices = []
        for speaker, ids in sorted(speakers.items()):
            others = set().union(*(other for name, other in speakers.items() if name != speaker))
            best = score_grid(subset(others), grid_points)[0]
            point = (best.lm_weight, best.word_score, best.letter_lm_scale)
            held_out = subset(ids)
            held_out_errors += score(held_out, {utt_id: grid_points[point][utt_id] for utt_id in held_out}).word_errors
            choices.append(f"{speaker} {point[0]:g}/{point[1]:g}/{point[2]:g}")
        print(
            f"letter scales {','.join(f'{s:g}' for s in letter_scales)} ({len(grid_points)} points):"
            f" in sample {in_sample_errors} word errors, leave-one-speaker-out {held_out_errors}"
            f" (chosen weight/score/letter scale: {'; '.join(choices)})"
        )


if __name__ == "__main__":
    main()
