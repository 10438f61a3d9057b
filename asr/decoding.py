"""CTC decoding: greedy best path, and beam search with a word n-gram language model."""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary
from torchaudio.models.decoder import (
    CTCDecoder,
    CTCDecoderLM,
    CTCDecoderLMState,
    CTCHypothesis,
    ctc_decoder,
)

from asr.features import valid_frames
from asr.lm import UNKNOWN, LanguageModelError, arpa_vocabulary

SPACE = " "
SILENCE = "|"


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path per utterance: arg-max each frame, merge repeats, drop blanks (id 0).

    ``log_probs`` is ``(batch, frames, vocab)``; frames past ``lengths`` are ignored.
    """
    best = log_probs.argmax(dim=-1)
    changed = torch.ones_like(best, dtype=torch.bool)
    changed[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = changed & (best != 0)
    keep &= valid_frames(lengths.to(best.device), best.size(1))
    best, keep = best.cpu(), keep.cpu()
    return [row[mask].tolist() for row, mask in zip(best, keep)]


@dataclass
class BeamSearchOptions:
    """Settings of the beam search with a word n-gram language model.

    ``lm_weight`` and ``word_score`` are tuned on a dev set and stored in the
    model file (see ``asr tune``); the rest trade speed for search errors.
    """

    lm_weight: float = 1.0
    word_score: float = 0.0  # added per word; offsets the LM's preference for short outputs
    # Spelled letters' (one-letter words') LM scores are multiplied by this: their
    # n-grams come from the few names spelled in training and say little about others.
    letter_lm_scale: float = 1.0
    beam_size: int = 50
    beam_size_token: int | None = None  # tokens expanded per frame; None: all
    beam_threshold: float = 25.0  # hypotheses this far below the best are pruned
    lexicon: bool = True  # words restricted to the LM's vocabulary; False: any spelling, unknown words scored as <unk>


def tuned_options(tuned: dict, **overrides: float | int | bool | None) -> BeamSearchOptions:
    """Defaults, then the values tuned into a model file (``asr tune``), then every override that is not None."""
    return BeamSearchOptions(**{**tuned, **{name: value for name, value in overrides.items() if value is not None}})


class BeamSearchDecoder:
    """CTC prefix beam search with a KenLM word n-gram, through torchaudio's flashlight decoder.

    With a lexicon (the default), every output word is one of the ARPA file's
    words, spelled by a trie. Without one, any character sequence may form a
    word: :class:`WordBoundaryLM` scores each completed word with the same
    n-gram, so a name never seen in training can still be recognized.
    """

    def __init__(self, vocabulary: list[str], lm_path: str | Path, options: BeamSearchOptions) -> None:
        if SPACE not in vocabulary:
            raise LanguageModelError(f"{lm_path}: the model's vocabulary has no space, so it cannot spell words")
        self.vocabulary = vocabulary
        self.lm_path = lm_path
        self.options = options
        # flashlight spells word boundaries with a silence token instead of a space.
        self.tokens = [SILENCE if c == SPACE else c for c in vocabulary]
        self.words = [w for w in arpa_vocabulary(lm_path) if set(w) <= set(vocabulary)]
        self.word_dict = word_dictionary([*self.words, UNKNOWN])
        try:
            with _quiet_stderr():  # KenLM draws a progress bar while it reads an ARPA file
                self.kenlm = KenLM(str(lm_path), self.word_dict)
                self.language_model = self._language_model()
                self.decoder = self._build()
        except RuntimeError as error:  # KenLM's reason is on the first line of a long message
            raise LanguageModelError(f"{lm_path}: KenLM cannot load it ({str(error).splitlines()[0]})") from None

    def with_weights(self, lm_weight: float, word_score: float, letter_lm_scale: float = 1.0) -> BeamSearchDecoder:
        """The same search with other weights, sharing the loaded language model (tuning tries many)."""
        other = copy.copy(self)
        other.options = replace(
            self.options, lm_weight=lm_weight, word_score=word_score, letter_lm_scale=letter_lm_scale
        )
        other.language_model = other._language_model()
        other.decoder = other._build()
        return other

    def _language_model(self) -> CTCDecoderLM | KenLM:
        """KenLM itself where it can score the search alone (lexicon, letters unscaled: the fastest)."""
        letter_scale = self.options.letter_lm_scale
        if not self.options.lexicon:
            return WordBoundaryLM(self.kenlm, self.word_dict, self.tokens, letter_scale)
        if letter_scale == 1.0:
            return self.kenlm
        return ScaledWordLM(self.kenlm, [letter_scale if len(w) == 1 else 1.0 for w in [*self.words, UNKNOWN]])

    def _build(self) -> CTCDecoder:
        options = self.options
        common = {
            "tokens": self.tokens,
            "lm": self.language_model,
            "beam_size": options.beam_size,
            "beam_size_token": options.beam_size_token,
            "beam_threshold": options.beam_threshold,
            "lm_weight": options.lm_weight,
            "blank_token": self.vocabulary[0],
            "sil_token": SILENCE,
        }
        if not options.lexicon:
            return ctc_decoder(lexicon=None, sil_score=options.word_score, **common)
        with tempfile.TemporaryDirectory() as folder:
            lexicon, lm_dict = Path(folder) / "lexicon.txt", Path(folder) / "lm_dict.txt"
            lexicon.write_text("".join(f"{w}\t{' '.join(w)} {SILENCE}\n" for w in self.words), encoding="utf-8")
            lm_dict.write_text("".join(f"{w}\n" for w in [*self.words, UNKNOWN]), encoding="utf-8")
            return ctc_decoder(lexicon=str(lexicon), lm_dict=str(lm_dict), word_score=options.word_score, **common)

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Best transcript of each utterance in a padded ``(batch, frames, vocab)`` batch."""
        emissions, lengths = self._end_with_silence(log_probs.detach().float().cpu(), lengths.cpu())
        hypotheses = self.decoder(emissions, lengths.int())
        return [self._text(nbest[0]) if nbest else "" for nbest in hypotheses]

    def _end_with_silence(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append one frame that is certainly a word boundary to each utterance.

        The lexicon spells every word followed by the boundary token, while the
        model, trained on transcripts without a trailing space, never emits one
        after the last word: this frame lets the last word end.
        """
        batch, _, vocab = log_probs.shape
        silence = torch.full((vocab,), -1e4)
        silence[self.tokens.index(SILENCE)] = 0.0
        extended = torch.cat([log_probs, torch.zeros(batch, 1, vocab)], dim=1)
        extended[torch.arange(batch), lengths] = silence
        return extended.contiguous(), lengths + 1

    def _text(self, hypothesis: CTCHypothesis) -> str:
        if self.options.lexicon:  # the lexicon decoder reports words; its tokens need not spell them
            return " ".join(hypothesis.words)
        spelled = "".join(SPACE if self.tokens[t] == SILENCE else self.tokens[t] for t in hypothesis.tokens.tolist())
        return " ".join(spelled.split())


def word_dictionary(words: list[str]) -> Dictionary:
    """Words indexed in their order (that of the lm_dict file the decoder reads); unknown words map to the last."""
    dictionary = Dictionary()
    for word in words:
        dictionary.add_entry(word)
    dictionary.set_default_index(len(words) - 1)
    return dictionary


class ScaledWordLM(CTCDecoderLM):
    """KenLM with each word's log-probability multiplied by its own factor (``scales[word index]``).

    States form a trie over word histories (``state.child``), which is how
    flashlight recognizes two hypotheses with the same history.
    """

    def __init__(self, kenlm: KenLM, scales: list[float]) -> None:
        CTCDecoderLM.__init__(self)
        self.kenlm = kenlm
        self.scales = scales
        self.states: dict[CTCDecoderLMState, object] = {}  # state -> KenLM state

    def start(self, start_with_nothing: bool) -> CTCDecoderLMState:
        self.states.clear()  # one utterance at a time: forget the last one's trie
        state = CTCDecoderLMState()
        self.states[state] = self.kenlm.start(start_with_nothing)
        return state

    def score(self, state: CTCDecoderLMState, usr_token_idx: int) -> tuple[CTCDecoderLMState, float]:
        child = state.child(usr_token_idx)
        self.states[child], score = self.kenlm.score(self.states[state], usr_token_idx)
        return child, score * self.scales[usr_token_idx]

    def finish(self, state: CTCDecoderLMState) -> tuple[CTCDecoderLMState, float]:
        child = state.child(-1)
        self.states[child], score = self.kenlm.finish(self.states[state])
        return child, score


class WordBoundaryLM(CTCDecoderLM):
    """A word n-gram for lexicon-free decoding: characters score nothing, and each
    silence token (a word boundary) scores the word spelled since the last one
    (a one-letter word's score times ``letter_lm_scale``).

    KenLM does the scoring; a word outside its vocabulary gets the probability of
    ``<unk>``. States form a trie over token histories, as in :class:`ScaledWordLM`.
    """

    def __init__(self, kenlm: KenLM, word_dict: Dictionary, tokens: list[str], letter_lm_scale: float) -> None:
        CTCDecoderLM.__init__(self)
        self.kenlm = kenlm
        self.word_dict = word_dict
        self.tokens = tokens
        self.letter_lm_scale = letter_lm_scale
        self.states: dict[CTCDecoderLMState, tuple[object, str]] = {}  # state -> (KenLM state, partial word)

    def start(self, start_with_nothing: bool) -> CTCDecoderLMState:
        self.states.clear()  # one utterance at a time: forget the last one's trie
        state = CTCDecoderLMState()
        self.states[state] = (self.kenlm.start(start_with_nothing), "")
        return state

    def score(self, state: CTCDecoderLMState, usr_token_idx: int) -> tuple[CTCDecoderLMState, float]:
        child = state.child(usr_token_idx)
        kenlm_state, partial = self.states[state]
        token = self.tokens[usr_token_idx]
        if token != SILENCE:
            self.states[child] = (kenlm_state, partial + token)
            return child, 0.0
        if not partial:
            self.states[child] = (kenlm_state, "")
            return child, 0.0
        next_state, score = self._score_word(kenlm_state, partial)
        self.states[child] = (next_state, "")
        return child, score

    def finish(self, state: CTCDecoderLMState) -> tuple[CTCDecoderLMState, float]:
        kenlm_state, partial = self.states[state]
        score = 0.0
        if partial:
            kenlm_state, score = self._score_word(kenlm_state, partial)
        final_state, end_score = self.kenlm.finish(kenlm_state)
        child = state.child(-1)
        self.states[child] = (final_state, "")
        return child, score + end_score

    def _score_word(self, kenlm_state: object, word: str) -> tuple[object, float]:
        index = self.word_dict.get_index(word)  # unknown words map to <unk>
        next_state, score = self.kenlm.score(kenlm_state, index)
        return next_state, score * (self.letter_lm_scale if len(word) == 1 else 1.0)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what C++ code writes to file descriptor 2 while the block runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
