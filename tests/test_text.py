import pytest

from asr.text import BLANK, Tokenizer, TokenizerError, normalize


def test_normalize_folds_case_punctuation_and_spaces() -> None:
    assert normalize("  Hello,   WORLD! ") == "hello world"
    assert normalize("Don’t stop") == "don't stop"
    assert normalize("twenty-one") == "twenty one"
    assert normalize("<s> YES </s>") == "s yes s"  # markup is the caller's to strip
    assert normalize("ﬁne") == "fine"  # NFKC folds the ligature


def test_tokenizer_round_trip_with_blank_at_zero() -> None:
    tokenizer = Tokenizer.from_texts(["go left", "stop"])
    assert tokenizer.vocabulary[0] == BLANK
    ids = tokenizer.encode("go stop")
    assert 0 not in ids
    assert tokenizer.decode(ids) == "go stop"
    assert tokenizer.decode([0, *ids, 0]) == "go stop"


def test_tokenizer_names_unknown_characters() -> None:
    tokenizer = Tokenizer.from_texts(["abc"])
    with pytest.raises(TokenizerError, match="'xz'"):
        tokenizer.encode("zax")


def test_tokenizer_rejects_bad_vocabularies() -> None:
    with pytest.raises(ValueError):
        Tokenizer(["a", "a"])
    with pytest.raises(ValueError):
        Tokenizer(["ab"])
