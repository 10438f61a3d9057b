"""Word n-gram language models: interpolated modified Kneser-Ney, written as ARPA.

The beam-search decoder reads the ARPA file through KenLM (inside
flashlight-text), so the file must follow KenLM's conventions: ``<s>`` has
probability zero (written as -99), ``<unk>`` is in the vocabulary, and every
n-gram's prefix and suffix are listed.

Why an estimator of our own: KenLM's ``lmplz`` is a C++ program that is not on
the package index, and the maintained Python packages did not hold up when
checked. ``arpabo`` (0.3.0) has a "kneser_ney" method that keeps every
backoff weight at 1 and does not interpolate, so its conditional
distributions do not sum to one; NLTK's ``nltk.lm`` cannot write ARPA. The
maths here is Chen & Goodman's interpolated modified Kneser-Ney, the method
``lmplz`` implements: three discounts per order estimated from counts of
counts, continuation counts for the lower orders, unigrams interpolated with
the uniform distribution over the vocabulary.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SENTENCE_START = "<s>"
SENTENCE_END = "</s>"
UNKNOWN = "<unk>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz's --discount_fallback, for corpora too small to estimate them

Ngram = tuple[str, ...]


class LanguageModelError(ValueError):
    """A language model file that cannot be used; the message names the file and the reason."""


@dataclass
class NgramModel:
    """Probabilities of every listed n-gram and backoff weights of their contexts.

    ``probabilities[n - 1]`` maps each n-gram to P(last word | the others), already
    interpolated with the lower orders; ``backoffs[n - 1]`` maps an n-gram that is
    the context of longer ones to the weight given to the lower order when the
    longer n-gram is not listed. Plain probabilities, not logarithms.
    """

    order: int
    probabilities: list[dict[Ngram, float]]
    backoffs: list[dict[Ngram, float]]
    discounts: list[tuple[float, float, float]]

    @property
    def vocabulary(self) -> list[str]:
        """The words the model can predict, ``<unk>`` and ``</s>`` included."""
        return sorted(gram[0] for gram in self.probabilities[0] if gram[0] != SENTENCE_START)

    def probability(self, word: str, context: Sequence[str] = ()) -> float:
        """P(word | context) by the ARPA backoff rule: what the decoder's KenLM computes."""
        if (word,) not in self.probabilities[0]:
            word = UNKNOWN
        context = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        weight = 1.0
        while True:
            gram = (*context, word)
            listed = self.probabilities[len(gram) - 1].get(gram)
            if listed is not None:
                return weight * listed
            weight *= self.backoffs[len(context) - 1].get(context, 1.0)
            context = context[1:]


def count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> list[Counter[Ngram]]:
    """Raw counts of every n-gram up to ``order`` in sentences padded with ``<s>`` and ``</s>``."""
    counts: list[Counter[Ngram]] = [Counter() for _ in range(order)]
    for words in sentences:
        padded = (SENTENCE_START, *words, SENTENCE_END)
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                counts[n - 1][padded[i : i + n]] += 1
    return counts


def adjusted_counts(raw: list[Counter[Ngram]]) -> list[Counter[Ngram]]:
    """Kneser-Ney's counts: the highest order keeps raw counts; a lower-order n-gram
    counts the distinct words seen before it, unless it starts the sentence (nothing
    can precede ``<s>``, so those keep their raw counts)."""
    adjusted = [Counter(raw[-1])]
    for n in range(len(raw) - 1, 0, -1):
        left_extensions: Counter[Ngram] = Counter(gram[1:] for gram in raw[n])
        adjusted.insert(
            0, Counter({g: (c if g[0] == SENTENCE_START else left_extensions[g]) for g, c in raw[n - 1].items()})
        )
    return adjusted


def estimate_discounts(counts: Iterable[int]) -> tuple[float, float, float]:
    """Chen & Goodman's discounts D1, D2, D3+ from the counts of counts n1..n4.

    Falls back to :data:`FALLBACK_DISCOUNTS` where the corpus is too small for the
    estimate to exist or to lie in its valid range (0 < Dk < k), as lmplz does.
    """
    n = Counter(c for c in counts if c <= 4)
    if any(n[k] == 0 for k in (1, 2, 3, 4)):
        return FALLBACK_DISCOUNTS
    y = n[1] / (n[1] + 2 * n[2])
    discounts = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
    if not all(0 < d < k for d, k in zip(discounts, (1, 2, 3))):
        return FALLBACK_DISCOUNTS
    return discounts


def estimate(
    sentences: Iterable[Sequence[str]], order: int = 3, discounts: list[tuple[float, float, float]] | None = None
) -> NgramModel:
    """Interpolated modified Kneser-Ney n-gram model of word sequences.

    ``discounts`` (one triple per order, unigrams first) replaces the estimated
    ones: tests use it to check hand-computed probabilities.
    """
    if order < 2:
        raise ValueError("the n-gram order must be at least 2 (KenLM reads no unigram-only models)")
    adjusted = adjusted_counts(count_ngrams(sentences, order))
    adjusted[0].pop((SENTENCE_START,), None)  # <s> is never predicted
    if not adjusted[0]:
        raise ValueError("no sentences to estimate a language model from")
    adjusted[0].setdefault((UNKNOWN,), 0)
    if discounts is None:
        discounts = [estimate_discounts(c for c in counts.values() if c > 0) for counts in adjusted]

    probabilities: list[dict[Ngram, float]] = []
    backoffs: list[dict[Ngram, float]] = [{} for _ in range(order)]
    for n, counts in enumerate(adjusted, start=1):
        d1, d2, d3 = discounts[n - 1]
        by_context: dict[Ngram, list[tuple[Ngram, int]]] = defaultdict(list)
        for gram, count in counts.items():
            by_context[gram[:-1]].append((gram, count))
        level: dict[Ngram, float] = {}
        for context, grams in by_context.items():
            total = sum(count for _, count in grams)
            discounted = {g: max(c - (d1 if c == 1 else d2 if c == 2 else d3), 0.0) for g, c in grams}
            # The mass taken from the listed words goes to the lower order (to the uniform distribution for unigrams).
            gamma = (total - sum(discounted.values())) / total
            lower = 1 / len(counts) if n == 1 else None
            for gram, _ in grams:
                lower_probability = lower if lower is not None else probabilities[n - 2][gram[1:]]
                level[gram] = discounted[gram] / total + gamma * lower_probability
            if n > 1:
                backoffs[n - 2][context] = gamma
        probabilities.append(level)
    probabilities[0][(SENTENCE_START,)] = 0.0
    return NgramModel(order, probabilities, backoffs, discounts)


def _log10(p: float) -> float:
    return -99.0 if p <= 0 else math.log10(p)


def write_arpa(model: NgramModel, path: str | Path) -> None:
    """Write the model in ARPA format (log10 probabilities and backoff weights)."""
    lines = ["\\data\\"]
    lines += [f"ngram {n}={len(level)}" for n, level in enumerate(model.probabilities, start=1)]
    for n, level in enumerate(model.probabilities, start=1):
        lines += ["", f"\\{n}-grams:"]
        for gram in sorted(level):
            line = f"{_log10(level[gram]):.7f}\t{' '.join(gram)}"
            if n < model.order:
                line += f"\t{_log10(model.backoffs[n - 1].get(gram, 1.0)):.7f}"
            lines.append(line)
    lines += ["", "\\end\\", ""]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines), encoding="utf-8")


def arpa_vocabulary(path: str | Path) -> list[str]:
    """The words of an ARPA file's unigram section, without ``<s>``, ``</s>`` and ``<unk>``."""
    if not Path(path).is_file():
        raise LanguageModelError(f"{path}: no such language model file")
    words: list[str] = []
    section = None
    try:
        with open(path, encoding="utf-8") as arpa:
            for line in arpa:
                line = line.strip()
                if line.startswith("\\"):
                    if section == "\\1-grams:":
                        break
                    section = line
                elif section == "\\1-grams:" and line:
                    word = line.split()[1]
                    if word not in (SENTENCE_START, SENTENCE_END, UNKNOWN):
                        words.append(word)
    except (UnicodeDecodeError, IndexError):
        section = None
    if section is None or not words:
        raise LanguageModelError(f"{path}: not an ARPA language model (no unigram section with words)")
    return words
