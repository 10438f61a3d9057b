"""Text normalization and the character tokenizer.

Training, manifests, decoding and scoring all go through :func:`normalize`,
so a reference and a hypothesis can never be spelled by two different rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

BLANK = "<blank>"
_KEPT = re.compile(r"[^a-z0-9' ]")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower-case, fold Unicode compatibility forms, drop punctuation except
    apostrophes (as in "don't"), and collapse whitespace.

    Hyphens and other separators become spaces so that "twenty-one" and
    "twenty one" are scored alike.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("’", "'").replace("-", " ")
    text = _KEPT.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


class TokenizerError(ValueError):
    """A transcript holds characters that the vocabulary cannot encode."""


class Tokenizer:
    """Characters to ids and back; id 0 is the CTC blank."""

    def __init__(self, characters: Iterable[str]) -> None:
        characters = list(characters)
        if BLANK in characters:
            characters.remove(BLANK)
        if len(set(characters)) != len(characters) or any(len(c) != 1 for c in characters):
            raise ValueError("vocabulary entries must be distinct single characters")
        self.vocabulary: list[str] = [BLANK, *characters]
        self._ids = {c: i for i, c in enumerate(self.vocabulary)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Tokenizer:
        """Build the vocabulary from normalized transcripts, in sorted order."""
        return cls(sorted({c for text in texts for c in text}))

    def __len__(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str) -> list[int]:
        """Ids of a normalized text; raises :class:`TokenizerError` naming unknown characters."""
        unknown = sorted({c for c in text if c not in self._ids})
        if unknown:
            raise TokenizerError(f"characters outside the vocabulary: {''.join(unknown)!r}")
        return [self._ids[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of a sequence of ids (blanks dropped, nothing merged)."""
        return "".join(self.vocabulary[i] for i in ids if i != 0)
