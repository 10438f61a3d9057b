"""Word timestamps and confidences from CTC posteriors.

Whatever decoded a transcript (greedy or beam search with an LM), its
characters are force-aligned to the same log-probabilities with torchaudio's
``forced_align`` (a Viterbi path that must spell exactly that transcript), so
both decoders get their times the same way. A word starts at the first frame
of its first character and ends after the last frame of its last character:
CTC models fire in peaks, so these are the frames where the model heard the
word, accurate to a frame or two, not phonetic boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchaudio.functional

from asr.text import Tokenizer


@dataclass
class Word:
    word: str
    start: float  # seconds from the start of the recording
    end: float
    confidence: float  # mean posterior probability of its characters' frames on the aligned path, 0 to 1


def align_words(
    log_probs: torch.Tensor, text: str, tokenizer: Tokenizer, frame_seconds: float, offset: float = 0.0
) -> list[Word]:
    """The words of ``text`` with times, given the ``(frames, vocab)`` log-probabilities it was decoded from.

    ``offset`` (seconds) is added to every time: the start of this stretch of
    frames within a longer recording. Characters the model cannot spell (a
    language model's word with a letter outside the vocabulary) are left out
    of the alignment; their word keeps the times of the others.
    """
    words = text.split()
    if not words:
        return []
    space = tokenizer.vocabulary.index(" ") if " " in tokenizer.vocabulary else None
    targets: list[int] = []
    owner: list[int] = []  # the word each target character belongs to
    for index, word in enumerate(words):
        if index and space is not None:
            targets.append(space)
            owner.append(-1)
        for character in word:
            if character in tokenizer.vocabulary:
                targets.append(tokenizer.vocabulary.index(character))
                owner.append(index)
    spans = _token_spans(log_probs, targets)
    if spans is None:  # more characters than frames can hold: spread the words evenly
        return _spread(words, log_probs.size(0) * frame_seconds, offset)
    found: dict[int, list[tuple[int, int, float]]] = {}
    for span, word_index in zip(spans, owner):
        if word_index >= 0:
            found.setdefault(word_index, []).append(span)
    result = []
    for index, word in enumerate(words):
        pieces = found.get(index)
        if not pieces:  # nothing of it could be aligned: place it where the previous word ended
            at = result[-1].end if result else offset
            result.append(Word(word, at, at, 0.0))
            continue
        start, end = pieces[0][0], pieces[-1][1]
        confidence = sum(score for _, _, score in pieces) / len(pieces)
        result.append(Word(word, offset + start * frame_seconds, offset + end * frame_seconds, confidence))
    return result


def _token_spans(log_probs: torch.Tensor, targets: list[int]) -> list[tuple[int, int, float]] | None:
    """``(start frame, end frame, mean probability)`` of each target on the best CTC path, or None if none fits."""
    repeats = sum(a == b for a, b in zip(targets, targets[1:]))
    if not targets or len(targets) + repeats > log_probs.size(0):
        return None
    path, scores = torchaudio.functional.forced_align(
        log_probs[None].float().cpu(), torch.tensor([targets], dtype=torch.int32), blank=0
    )
    # torchaudio's merge_tokens, in numpy: a span is a run of one non-blank label on the path.
    labels, probabilities = path[0].numpy(), scores[0].exp().numpy()
    starts = np.flatnonzero(np.diff(labels, prepend=-1))
    ends = np.append(starts[1:], len(labels))
    means = np.add.reduceat(probabilities, starts) / (ends - starts)
    return [(int(a), int(b), float(m)) for a, b, m in zip(starts, ends, means) if labels[a] != 0]


def _spread(words: list[str], seconds: float, offset: float) -> list[Word]:
    step = seconds / len(words)
    return [Word(w, offset + i * step, offset + (i + 1) * step, 0.0) for i, w in enumerate(words)]
