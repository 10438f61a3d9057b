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
    outputs = [(batch.indices, log_probs, lengths) for batch, log_probs, lengths in model_outputs(asr_model, utterances)]
    references = {utterances[i].utt_id: utterances[i].text for indices, _, _ in outputs for i in indices}
    loaded = BeamSearchDecoder(asr_model.tokenizer.vocabulary, lm_path, options)  # reads the LM once
    grid = []
    for lm_weight, word_score, letter_lm_scale in itertools.product(lm_weights, word_scores, letter_lm_scales):
        decoder = loaded.with_weights(lm_weight, word_score, letter_lm_scale)
        hypotheses = {
            utterances[i].utt_id: text
            for indices, log_probs, lengths in outputs
            for i, text in zip(indices, decode(asr_model, log_probs, lengths, decoder))
        }
        scores = score(references, hypotheses)
        grid.append(GridPoint(lm_weight, word_score, letter_lm_scale, scores.wer, scores.cer))
    return sorted(grid, key=lambda p: (round(p.wer, 6), p.lm_weight, abs(p.word_score), abs(1 - p.letter_lm_scale)))
