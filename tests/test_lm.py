"""The n-gram estimator: hand-checked probabilities, normalization, and KenLM reading our ARPA files."""

import math
from pathlib import Path

import pytest
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import create_word_dict

from asr.lm import (
    FALLBACK_DISCOUNTS,
    LanguageModelError,
    arpa_vocabulary,
    estimate,
    estimate_discounts,
    write_arpa,
)

TINY = [["a", "b"], ["b", "a"], ["a"]]
SENTENCES = [s.split() for s in ["a b c", "a b d", "b c", "a c", "a b c d", "d d a", "c a b", "b"]]


def test_probabilities_match_a_hand_computation() -> None:
    # Padded: <s> a b </s> | <s> b a </s> | <s> a </s>. With D1 = 0.5, D2 = 1:
    # unigram continuation counts a = b = </s> = 2 (total 6), gamma = (6 - 3) / 6 = 1/2,
    #   P(a) = (2 - 1) / 6 + 1/2 * 1/4 = 7/24 (4 words: a, b, </s>, <unk>), P(<unk>) = 1/8.
    # bigrams after <s>: a 2, b 1 (total 3), gamma = 1/2:
    #   P(a | <s>) = (2 - 1) / 3 + 1/2 * 7/24 = 23/48, P(b | <s>) = 0.5 / 3 + 7/48 = 15/48;
    # "a a" is unseen: P(a | a) = gamma(a) P(a) = 1/2 * 7/24 = 7/48.
    model = estimate(TINY, order=2, discounts=[(0.5, 1.0, 1.5)] * 2)
    assert model.probability("a") == pytest.approx(7 / 24)
    assert model.probability("<unk>") == pytest.approx(1 / 8)
    assert model.probability("a", ["<s>"]) == pytest.approx(23 / 48)
    assert model.probability("b", ["<s>"]) == pytest.approx(15 / 48)
    assert model.probability("a", ["a"]) == pytest.approx(7 / 48)
    assert model.probability("zebra", ["a"]) == pytest.approx(1 / 16)  # unknown words are <unk>


def test_discounts_follow_chen_and_goodman() -> None:
    # n1..n4 = 10, 5, 3, 2: Y = 10 / 20, D1 = 1 - 2Y/2, D2 = 2 - 3Y * 3/5, D3+ = 3 - 4Y * 2/3.
    counts = [1] * 10 + [2] * 5 + [3] * 3 + [4] * 2 + [7] * 4
    assert estimate_discounts(counts) == pytest.approx((0.5, 1.1, 3 - 4 / 3))
    assert estimate_discounts([1, 1, 2, 3]) == FALLBACK_DISCOUNTS  # no n-gram seen four times
    assert estimate(TINY, order=2).discounts == [FALLBACK_DISCOUNTS] * 2


@pytest.mark.parametrize("order", [2, 3, 4])
def test_every_context_sums_to_one(order: int) -> None:
    model = estimate(SENTENCES, order=order)
    for context in [(), ("<s>",), ("a",), ("a", "b"), ("<s>", "a", "b"), ("d", "d"), ("zebra", "c")]:
        assert sum(model.probability(w, context) for w in model.vocabulary) == pytest.approx(1.0)


@pytest.mark.parametrize("order", [2, 3])
def test_kenlm_reads_our_arpa_and_agrees(order: int, tmp_path: Path) -> None:
    model = estimate(SENTENCES, order=order)
    write_arpa(model, tmp_path / "lm.arpa")
    words = arpa_vocabulary(tmp_path / "lm.arpa")
    assert sorted(words) == ["a", "b", "c", "d"]
    dictionary = create_word_dict({w: [[w]] for w in [*words, "<unk>"]})
    kenlm = KenLM(str(tmp_path / "lm.arpa"), dictionary)
    state = kenlm.start(False)
    history = ["<s>"]
    for word in ["a", "b", "d", "zebra", "c"]:
        state, log10_probability = kenlm.score(state, dictionary.get_index(word))
        assert log10_probability == pytest.approx(math.log10(model.probability(word, history)), abs=1e-5)
        history.append(word)
    _, end = kenlm.finish(state)
    assert end == pytest.approx(math.log10(model.probability("</s>", history)), abs=1e-5)


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        estimate(TINY, order=1)
    with pytest.raises(ValueError, match="no sentences"):
        estimate([], order=2)
    not_arpa = tmp_path / "model.pt"
    not_arpa.write_bytes(b"\x80\x02binary")
    with pytest.raises(LanguageModelError, match="not an ARPA language model"):
        arpa_vocabulary(not_arpa)
    with pytest.raises(LanguageModelError, match="no such language model file"):
        arpa_vocabulary(tmp_path / "missing.arpa")
