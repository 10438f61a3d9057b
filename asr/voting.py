"""Word-level majority vote over several decodings of one utterance (ROVER, Fiscus 1997).

A model trained with speed perturbation hears an utterance three ways (at
0.9, 1.0 and 1.1 times its speed), and its three decodings err on partly
different words. Aligning them word by word and keeping, in each place, what
most of them say removes some of each one's errors: on AN4's dev set, over
three training seeds, greedy decoding made 91 errors at speed 1.0 alone and
87 voted (README, row AC).

The first decoding is the backbone: the others are aligned to its words (by
jiwer, the same edit-distance alignment that scores WER), and where no word
has a majority, the backbone's stands.
"""

from __future__ import annotations

from collections import Counter

import jiwer


def align_to(backbone: list[str], other: list[str]) -> tuple[list[tuple[str, ...]], list[str | None]]:
    """``other``'s words placed against ``backbone``'s.

    Returns the words ``other`` inserts before each backbone word (one entry
    more than the backbone has words: the last holds those after its end), and
    the word ``other`` has in each backbone word's place (None where it has
    none).
    """
    inserted: list[tuple[str, ...]] = [() for _ in range(len(backbone) + 1)]
    aligned: list[str | None] = [None] * len(backbone)
    for chunk in jiwer.process_words(" ".join(backbone), " ".join(other)).alignments[0]:
        if chunk.type == "insert":
            inserted[chunk.ref_start_idx] += tuple(other[chunk.hyp_start_idx : chunk.hyp_end_idx])
        elif chunk.type in ("equal", "substitute"):  # the same number of words on both sides
            for offset in range(chunk.ref_end_idx - chunk.ref_start_idx):
                aligned[chunk.ref_start_idx + offset] = other[chunk.hyp_start_idx + offset]
    return inserted, aligned


def vote(hypotheses: list[str]) -> str:
    """The words more than half of ``hypotheses`` agree on, place by place; the first breaks ties.

    In each backbone word's place the word (or the absence of one) given by a
    majority wins, else the backbone's word; words inserted between two
    backbone words are kept only where a majority inserts exactly them.
    """
    backbone = hypotheses[0].split()
    if len(hypotheses) == 1:
        return " ".join(backbone)
    majority = len(hypotheses) // 2 + 1
    others = [align_to(backbone, h.split()) for h in hypotheses[1:]]
    words: list[str] = []
    for place in range(len(backbone) + 1):
        insertion, count = Counter(inserted[place] for inserted, _ in others).most_common(1)[0]
        if insertion and count >= majority:  # the backbone, inserting nothing, is the remaining vote
            words.extend(insertion)
        if place == len(backbone):
            break
        word, count = Counter([backbone[place], *(aligned[place] for _, aligned in others)]).most_common(1)[0]
        chosen = word if count >= majority else backbone[place]
        if chosen is not None:
            words.append(chosen)
    return " ".join(words)
