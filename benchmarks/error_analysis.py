"""Where a decoding's word errors are: spelled letters against other words, and which words it confuses.

AN4 mixes spelled sequences ("r o b e r t") with words (names of numbers,
months, commands). A word language model can mend a misheard word, but not a
misheard letter in a random spelling, so the two kinds of error call for
different fixes: this script says how many of each a decoding makes, and its
most frequent substitutions.

A reference word of one letter is a spelled letter. Each substitution and
deletion is counted on the reference word's side, each insertion on the
inserted word's, so the two error counts add up to the decoding's total.

    python benchmarks/error_analysis.py exp/an4/decode_test_beam_lm   # reads ref.txt and hyp.txt there
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import jiwer

from asr.scoring import ScoringError, paired, read_transcripts


def is_letter(word: str) -> bool:
    """A spelled letter: a word of one alphabetic character."""
    return len(word) == 1 and word.isalpha()


@dataclass
class ErrorCounts:
    utterances: int = 0
    wrong_utterances: int = 0
    letter_words: int = 0  # reference words that are spelled letters
    other_words: int = 0
    letter_errors: int = 0
    other_errors: int = 0
    substitutions: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, reference: str, hypothesis: str) -> None:
        """Count one utterance's errors (both sides already normalized)."""
        ref_words, hyp_words = reference.split(), hypothesis.split()
        self.utterances += 1
        self.letter_words += sum(map(is_letter, ref_words))
        self.other_words += sum(not is_letter(w) for w in ref_words)
        if ref_words == hyp_words:
            return
        self.wrong_utterances += 1
        for chunk in jiwer.process_words(reference, hypothesis).alignments[0]:
            refs = ref_words[chunk.ref_start_idx : chunk.ref_end_idx]
            hyps = hyp_words[chunk.hyp_start_idx : chunk.hyp_end_idx]
            if chunk.type == "substitute":
                self.substitutions.update(zip(refs, hyps))
            if chunk.type in ("substitute", "delete"):
                self._count(refs)
            elif chunk.type == "insert":
                self._count(hyps)

    def _count(self, words: list[str]) -> None:
        letters = sum(map(is_letter, words))
        self.letter_errors += letters
        self.other_errors += len(words) - letters


def analyse(references: dict[str, str], hypotheses: dict[str, str]) -> ErrorCounts:
    """Error counts of a decoding, paired and normalized as `asr.scoring.score` pairs them."""
    counts = ErrorCounts()
    for _, reference, hypothesis in paired(references, hypotheses):
        counts.add(reference, hypothesis)
    return counts


def report(counts: ErrorCounts, top: int) -> str:
    def rate(errors: int, words: int) -> str:
        return f"{errors} errors in {words} words ({100.0 * errors / max(words, 1):.2f}%)"

    total = counts.letter_errors + counts.other_errors
    lines = [
        f"utterances: {counts.utterances}, {counts.wrong_utterances} with an error",
        f"all words: {rate(total, counts.letter_words + counts.other_words)}",
        f"spelled letters: {rate(counts.letter_errors, counts.letter_words)}",
        f"other words: {rate(counts.other_errors, counts.other_words)}",
        "most frequent substitutions (reference -> hypothesis):",
    ]
    lines += [f"  {ref} -> {hyp}: {n}" for (ref, hyp), n in counts.substitutions.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("decode_dir", type=Path, help="a decode folder holding ref.txt and hyp.txt")
    parser.add_argument("--top", type=int, default=15, help="how many substitution pairs to list")
    args = parser.parse_args()
    try:
        references = read_transcripts(args.decode_dir / "ref.txt")
        hypotheses = read_transcripts(args.decode_dir / "hyp.txt")
        counts = analyse(references, hypotheses)
    except ScoringError as error:
        raise SystemExit(f"error: {args.decode_dir}: {error}") from None
    print(report(counts, args.top))


if __name__ == "__main__":
    main()
