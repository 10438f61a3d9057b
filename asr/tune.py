"""Choosing the language-model weight, word score and (if asked) letter scale on a dev set.

The acoustic model runs once; the beam search then decodes its stored outputs
for every point of a grid, and the point with the lowest dev WER wins (ties go
to the smaller LM weight, then the word score nearer zero, then the letter
scale nearer one: the milder change).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from asr.checkpoint import ASRModel
from asr.data import Utterance
from asr.decoding import BeamSearchDecoder, BeamSearchOptions
from asr.scoring import score
from asr.transcribe import decode, model_outputs


@dataclass
class GridPoint:
    lm_weight: float
    word_score: float
    letter_lm_scale: float
    wer: float
    cer: float
    word_errors: int


Point = tuple[float, float, float]  # (LM weight, word score, letter scale)

# Stage 5's grid (`asr tune`'s defaults): 49 points.
LM_WEIGHTS = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
WORD_SCORES = [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def decode_grid(
    asr_model: ASRModel,
    utterances: list[Utterance],
    lm_path: str | Path,
    points: list[Point | None],
    options: BeamSearchOptions,
    speed: float = 1.0,
    search: type[BeamSearchDecoder] = BeamSearchDecoder,
) -> tuple[dict[str, str], dict[Point | None, dict[str, str]]]:
    """References, and each grid point's hypotheses, by utterance id; the point None is greedy decoding.

    The acoustic model runs once (on the audio played ``speed`` times faster)
    and the LM is read once; only the search runs per point. ``search`` is
    the decoder class (benchmarks try subclasses that score another LM). Check the
    utterances with :func:`asr.data.refuse_test_data` before calling.
    """
    outputs = [
        (batch.indices, log_probs, lengths)
        for batch, log_probs, lengths in model_outputs(asr_model, utterances, speed=speed)
    ]
    references = {utterances[i].utt_id: utterances[i].text for indices, _, _ in outputs for i in indices}
    loaded = search(asr_model.tokenizer.vocabulary, lm_path, options)
    hypotheses = {}
    for point in points:
        decoder = None if point is None else loaded.with_weights(*point)
        hypotheses[point] = {
            utterances[i].utt_id: text
            for indices, log_probs, lengths in outputs
            for i, text in zip(indices, decode(asr_model, log_probs, lengths, decoder))
        }
    return references, hypotheses


def best_first(grid: list[GridPoint]) -> list[GridPoint]:
    """Lowest WER first; among equals the milder change.

    Milder: the smaller LM weight, then the word score nearer 0, then the letter scale nearer 1.
    """
    return sorted(grid, key=lambda p: (round(p.wer, 6), p.lm_weight, abs(p.word_score), abs(1 - p.letter_lm_scale)))


def score_grid(references: dict[str, str], hypotheses: dict[Point, dict[str, str]]) -> list[GridPoint]:
    """Each point's WER and CER over ``references`` (a subset of the decoded utterances is allowed), best first."""
    grid = []
    for point, texts in hypotheses.items():
        scores = score(references, {utt_id: texts[utt_id] for utt_id in references})
        grid.append(GridPoint(*point, scores.wer, scores.cer, scores.word_errors))
    return best_first(grid)


def tune_lm(
    asr_model: ASRModel,
    utterances: list[Utterance],
    lm_path: str | Path,
    lm_weights: list[float],
    word_scores: list[float],
    letter_lm_scales: list[float],
    options: BeamSearchOptions,
) -> list[GridPoint]:
    """Dev WER and CER at every (LM weight, word score, letter scale), best first.

    Check the utterances with :func:`asr.data.refuse_test_data` before calling.
    """
    points = list(itertools.product(lm_weights, word_scores, letter_lm_scales))
    references, hypotheses = decode_grid(asr_model, utterances, lm_path, points, options)
    return score_grid(references, hypotheses)
