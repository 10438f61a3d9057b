import importlib.util
import math
from pathlib import Path

import pytest
import torch

from asr.decoding import BeamSearchDecoder, BeamSearchOptions, greedy_decode
from asr.lm import LanguageModelError, estimate, write_arpa
from asr.text import Tokenizer


def one_hot_log_probs(paths: list[list[int]], vocab: int = 5) -> torch.Tensor:
    frames = max(len(p) for p in paths)
    log_probs = torch.full((len(paths), frames, vocab), -10.0)
    for b, path in enumerate(paths):
        for t, token in enumerate(path):
            log_probs[b, t, token] = 0.0
    return log_probs


def test_greedy_merges_repeats_and_drops_blanks() -> None:
    log_probs = one_hot_log_probs([[1, 1, 0, 1, 2, 2, 0, 0, 3], [0, 4, 4, 4, 0, 4, 1, 1, 1]])
    assert greedy_decode(log_probs, torch.tensor([9, 9])) == [[1, 1, 2, 3], [4, 4, 1]]


def test_greedy_ignores_frames_past_the_length() -> None:
    log_probs = one_hot_log_probs([[2, 0, 3, 3, 1, 1]])
    assert greedy_decode(log_probs, torch.tensor([4])) == [[2, 3]]
    assert greedy_decode(log_probs, torch.tensor([0])) == [[]]


# Beam search with a word LM, on emissions built by hand: each frame gives its
# character probability 0.9 unless two characters share it.
VOCABULARY = ["<blank>", " ", "a", "c", "e", "h", "s", "t"]
LM_CORPUS = ["the cat sat", "the cat", "a cat sat", "the hat sat", "a hat"]


def emissions(frames: list[dict[str, float]]) -> torch.Tensor:
    """(1, frames, vocab) log-probabilities; characters not named share what is left."""
    rows = []
    for frame in frames:
        rest = (1 - sum(frame.values())) / (len(VOCABULARY) - len(frame))
        rows.append([math.log(frame.get(c, rest)) for c in VOCABULARY])
    return torch.tensor([rows])


def spell(text: str, ambiguous: dict[int, dict[str, float]]) -> list[dict[str, float]]:
    """Frames spelling ``text`` with a blank after each character; position i uses ambiguous[i] if given."""
    frames = []
    for i, char in enumerate(text):
        frames.append(ambiguous.get(i, {char: 0.9}))
        frames.append({"<blank>": 0.9})
    return frames


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lm") / "lm.arpa"
    write_arpa(estimate([s.split() for s in LM_CORPUS], order=3), path)
    return path


@pytest.mark.parametrize("lexicon", [True, False])
def test_lm_prefers_the_known_word_over_an_acoustically_closer_unknown_one(lm_path: Path, lexicon: bool) -> None:
    # "the cet sat": the acoustics lean to "e" (0.5 against 0.4 for "a"); "cet" is not a word the LM knows.
    log_probs = emissions(spell("the cet sat", {5: {"e": 0.5, "a": 0.4}}))
    lengths = torch.tensor([log_probs.size(1)])
    vocabulary = Tokenizer(VOCABULARY[1:]).vocabulary
    assert vocabulary == VOCABULARY
    assert Tokenizer(vocabulary).decode(greedy_decode(log_probs, lengths)[0]) == "the cet sat"
    decoder = BeamSearchDecoder(vocabulary, lm_path, BeamSearchOptions(lm_weight=1.0, lexicon=lexicon))
    assert decoder(log_probs, lengths) == ["the cat sat"]
    # Without the LM's pull the acoustics win: the weight is what changed the answer.
    silent = BeamSearchDecoder(vocabulary, lm_path, BeamSearchOptions(lm_weight=0.0, lexicon=lexicon))
    assert silent(log_probs, lengths) == (["the cat sat"] if lexicon else ["the cet sat"])
    # Re-weighting the loaded decoder (as tuning does) is the same as building it anew.
    assert decoder.with_weights(0.0, 0.0)(log_probs, lengths) == silent(log_probs, lengths)
    assert decoder.with_weights(1.0, 0.0)(log_probs, lengths) == ["the cat sat"]


def test_lexicon_free_decoding_keeps_a_clear_unknown_word(lm_path: Path) -> None:
    # "the hat ate": "ate" is outside the LM's vocabulary but the acoustics are certain.
    log_probs = emissions(spell("the hat ate", {}))
    lengths = torch.tensor([log_probs.size(1)])
    free = BeamSearchDecoder(VOCABULARY, lm_path, BeamSearchOptions(lm_weight=1.0, lexicon=False))
    assert free(log_probs, lengths) == ["the hat ate"]
    bound = BeamSearchDecoder(VOCABULARY, lm_path, BeamSearchOptions(lm_weight=1.0, lexicon=True))
    assert "ate" not in bound(log_probs, lengths)[0].split()


def test_beam_search_decodes_a_padded_batch(lm_path: Path) -> None:
    long = emissions(spell("the cat sat", {}))
    short = emissions(spell("a hat", {}))
    batch = torch.full((2, long.size(1), len(VOCABULARY)), math.log(1 / len(VOCABULARY)))
    batch[0], batch[1, : short.size(1)] = long[0], short[0]
    decoder = BeamSearchDecoder(VOCABULARY, lm_path, BeamSearchOptions())
    assert decoder(batch, torch.tensor([long.size(1), short.size(1)])) == ["the cat sat", "a hat"]


def test_a_file_that_is_not_a_language_model_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.arpa"
    broken.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\tthe\n-1.0\tcat\n\n\\end\\\n")
    with pytest.raises(LanguageModelError, match="broken.arpa: KenLM cannot load it"):
        BeamSearchDecoder(VOCABULARY, broken, BeamSearchOptions())


@pytest.mark.parametrize("lexicon", [True, False])
def test_letter_scale_lets_the_acoustics_choose_spelled_letters(tmp_path: Path, lexicon: bool) -> None:
    # Training spelled "c a t" three times and "c a s" once; the audio leans to "s" (0.5 against 0.4 for "t").
    lm_path = tmp_path / "letters.arpa"
    write_arpa(estimate([s.split() for s in ["c a t", "c a t", "c a t", "c a s", "the cat sat"]], order=3), lm_path)
    log_probs = emissions(spell("c a s", {4: {"s": 0.5, "t": 0.4}}))
    lengths = torch.tensor([log_probs.size(1)])
    decoder = BeamSearchDecoder(VOCABULARY, lm_path, BeamSearchOptions(lm_weight=2.0, lexicon=lexicon))
    assert decoder(log_probs, lengths) == ["c a t"]  # the letter n-gram overrules the audio
    assert decoder.with_weights(2.0, 0.0, letter_lm_scale=0.0)(log_probs, lengths) == ["c a s"]
    # Words other than letters keep the LM's full weight: "cet" is still read as "cat".
    words = emissions(spell("the cet sat", {5: {"e": 0.5, "a": 0.4}}))
    scaled = BeamSearchDecoder(VOCABULARY, lm_path, BeamSearchOptions(lm_weight=2.0, letter_lm_scale=0.0, lexicon=lexicon))
    assert scaled(words, torch.tensor([words.size(1)])) == ["the cat sat"]


def test_a_character_lm_pulls_a_spelling_towards_the_ones_it_has_seen(tmp_path: Path) -> None:
    """benchmarks/char_lm.py: lexicon-free search scored by a character n-gram of the corpus."""
    script = Path(__file__).parent.parent / "benchmarks" / "char_lm.py"
    spec = importlib.util.spec_from_file_location("char_lm", script)
    char_lm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(char_lm)
    assert char_lm.as_characters("a cat") == ["a", "|", "c", "a", "t", "|"]
    path = tmp_path / "char.arpa"
    write_arpa(estimate([char_lm.as_characters(s) for s in LM_CORPUS], order=4), path)
    log_probs = emissions(spell("the cet sat", {5: {"e": 0.5, "a": 0.4}}))
    lengths = torch.tensor([log_probs.size(1)])
    pulled = char_lm.CharLMDecoder(VOCABULARY, path, BeamSearchOptions(lm_weight=1.0, lexicon=False))
    assert pulled(log_probs, lengths) == ["the cat sat"]
    assert pulled.with_weights(0.0, 0.0)(log_probs, lengths) == ["the cet sat"]
