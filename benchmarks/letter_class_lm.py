"""A word n-gram in which spelled letters are one class (Brown et al., 1992), written as a word ARPA.

AN4's speakers spell names, and a word n-gram learns the letter sequences of
the names spelled in training, which say nothing of the names new speakers
spell. In a class n-gram every one-letter word is the token ``<letter>``
while counting, and a letter's probability is P(``<letter>`` | history) / 26:
the LM says when a letter comes and how many, the acoustics alone which.

flashlight's lexicon decoder reads word n-grams only, so the class model is
written out as one: each n-gram holding ``<letter>`` becomes one n-gram per
choice of letters, with the class n-gram's probability (divided by 26 where
the predicted word is a letter) and backoff weight. ARPA's backoff rule then
gives every letter sequence exactly the class model's probability.

    python benchmarks/letter_class_lm.py exp/an4/manifests/train.jsonl exp/an4/letter_class_lm.arpa
"""

from __future__ import annotations

import argparse
import itertools
import string

from asr.data import read_manifest, refuse_test_data
from asr.lm import Ngram, NgramModel, estimate, write_arpa

LETTER = "<letter>"
LETTERS = string.ascii_lowercase


def as_classes(sentence: list[str]) -> list[str]:
    """The sentence with every one-letter word replaced by the letter class."""
    return [LETTER if len(word) == 1 and word in LETTERS else word for word in sentence]


def expand(gram: Ngram) -> list[Ngram]:
    """Every word n-gram the class n-gram stands for (26 choices per ``<letter>``)."""
    choices = [LETTERS if word == LETTER else (word,) for word in gram]
    return list(itertools.product(*choices))


def letters_as_words(model: NgramModel) -> NgramModel:
    """The class model as a word model: the same probabilities for every word sequence."""
    probabilities: list[dict[Ngram, float]] = []
    backoffs: list[dict[Ngram, float]] = []
    for level, weights in zip(model.probabilities, model.backoffs):
        share = {gram: 1 / len(LETTERS) if gram[-1] == LETTER else 1.0 for gram in level}
        probabilities.append({word_gram: p * share[gram] for gram, p in level.items() for word_gram in expand(gram)})
        backoffs.append({word_gram: b for gram, b in weights.items() for word_gram in expand(gram)})
    return NgramModel(model.order, probabilities, backoffs, model.discounts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", help="training manifest (test data is refused)")
    parser.add_argument("out", help="ARPA file to write")
    parser.add_argument("--order", type=int, default=3)
    args = parser.parse_args()
    utterances = read_manifest(args.manifest)
    refuse_test_data(args.manifest, utterances)
    model = letters_as_words(estimate([as_classes(u.text.split()) for u in utterances if u.text.strip()], args.order))
    write_arpa(model, args.out)
    sizes = ", ".join(f"{len(level)} {n}-grams" for n, level in enumerate(model.probabilities, start=1))
    print(f"wrote {args.out}: {sizes}")


if __name__ == "__main__":
    main()
