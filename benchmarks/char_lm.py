"""A character n-gram language model, and lexicon-free beam search scored by it.

The word 3-gram knows only the words and word sequences of the training
transcripts. A character n-gram (Maas et al., 2015, "Lexicon-free
conversational speech recognition") scores any spelling: each character,
and each word boundary, is one token of the n-gram, so a name never seen in
training still gets the probability of its letters. Here the sentence ``go
ahead`` is counted as ``g o | a h e a d |``: words end with the boundary
token, the last one too, because the decoder ends every hypothesis with one
(:meth:`asr.decoding.BeamSearchDecoder._end_with_silence`).

flashlight's lexicon-free search scores every emitted token with the LM, so the
KenLM model is read with the acoustic model's tokens as its dictionary. The
KenLM inside flashlight-text reads orders up to 6.

    python benchmarks/char_lm.py exp/an4/manifests/train.jsonl exp/an4/char_lm.arpa --order 6
    python benchmarks/tune_crossval.py exp/an4/model.pt exp/an4/manifests/dev.jsonl --lm exp/an4/char_lm.arpa --char-lm
"""

from __future__ import annotations

import argparse
import functools
import sys

from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from asr.data import ManifestError, read_manifest, refuse_test_data
from asr.decoding import SILENCE, BeamSearchDecoder, _quiet_stderr
from asr.lm import estimate, write_arpa

KENLM_MAX_ORDER = 6


def as_characters(text: str) -> list[str]:
    """A transcript as the decoder's tokens: its characters, each word followed by the boundary token."""
    return [token for word in text.split() for token in (*word, SILENCE)]


class CharLMDecoder(BeamSearchDecoder):
    """Lexicon-free beam search in which the character n-gram scores every token.

    Build it with ``BeamSearchOptions(lexicon=False)``; the word score is then
    flashlight's ``sil_score``, added at every word boundary.
    """

    @functools.cached_property
    def token_lm(self) -> KenLM:
        """Read once, indexed by the search's tokens; the copies with_weights makes share it."""
        tokens = Dictionary()
        for token in self.tokens:
            tokens.add_entry(token)
        with _quiet_stderr():
            return KenLM(str(self.lm_path), tokens)

    def _language_model(self) -> KenLM:
        return self.token_lm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", help="training manifest (test data is refused)")
    parser.add_argument("out", help="ARPA file to write")
    parser.add_argument("--order", type=int, default=KENLM_MAX_ORDER)
    args = parser.parse_args()
    if not 2 <= args.order <= KENLM_MAX_ORDER:
        parser.error(f"--order must be 2 to {KENLM_MAX_ORDER} (the orders flashlight's KenLM reads)")
    try:
        utterances = read_manifest(args.manifest)
        refuse_test_data(args.manifest, utterances)
    except ManifestError as error:
        sys.exit(f"error: {error}")
    model = estimate([as_characters(u.text) for u in utterances], args.order)
    write_arpa(model, args.out)
    counts = ", ".join(f"{len(level)} {n}-grams" for n, level in enumerate(model.probabilities, start=1))
    print(f"wrote {args.out}: {counts} from {len(utterances)} sentences")


if __name__ == "__main__":
    main()
