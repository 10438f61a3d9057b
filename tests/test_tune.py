"""Ranking a tuning grid: by WER over the utterances asked for, ties to the milder change."""

from asr.tune import score_grid

REFERENCES = {"a": "one two three", "b": "c a t"}


def test_ties_go_to_the_milder_change_and_subsets_score_alone() -> None:
    hypotheses = {
        (2.0, 1.0, 1.0): {"a": "one two three", "b": "c a t"},  # right everywhere, stronger LM
        (0.5, 3.0, 1.0): {"a": "one two three", "b": "c a t"},  # right everywhere, weaker LM: wins the tie
        (0.5, 0.0, 0.5): {"a": "one two tree", "b": "c a t"},  # one word wrong on "a" only
    }
    grid = score_grid(REFERENCES, hypotheses)
    assert [(p.lm_weight, p.word_score, p.letter_lm_scale) for p in grid][:2] == [(0.5, 3.0, 1.0), (2.0, 1.0, 1.0)]
    assert (grid[-1].wer, grid[-1].word_errors) == (100 / 6, 1)

    # Scored on "b" alone all three are right: the mildest change (weight 0.5, word score 0) wins.
    only_b = score_grid({"b": REFERENCES["b"]}, hypotheses)
    assert (only_b[0].lm_weight, only_b[0].word_score, only_b[0].wer) == (0.5, 0.0, 0.0)
