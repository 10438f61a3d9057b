"""Corpus-level word and character error rates on jiwer.

Rates are total edits over total reference words (or characters), as sclite,
deepspeech.pytorch and ESPnet report them, not a mean of per-utterance rates.
Both sides go through the library's one text normalizer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import jiwer

from asr.data import ManifestError, read_manifest
from asr.text import normalize


class ScoringError(ValueError):
    """References and hypotheses that cannot be paired; the message says why."""


@dataclass
class Scores:
    wer: float  # percent
    cer: float  # percent
    utterances: int
    words: int
    characters: int
    word_errors: int
    char_errors: int


def paired(references: dict[str, str], hypotheses: dict[str, str]) -> list[tuple[str, str, str]]:
    """``(id, reference, hypothesis)`` for every utterance, both sides normalized, sorted by id.

    Every reference needs a hypothesis and vice versa; a mismatch is an error,
    not a silently smaller test set. So is a reference that normalizes to nothing.
    """
    missing = sorted(set(references) - set(hypotheses))
    extra = sorted(set(hypotheses) - set(references))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} reference ids have no hypothesis (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} hypothesis ids have no reference (e.g. {extra[0]})")
        raise ScoringError("; ".join(parts))
    ids = sorted(references)
    if not ids:
        raise ScoringError("no utterances to score")
    pairs = [(i, normalize(references[i]), normalize(hypotheses[i])) for i in ids]
    empty = [i for i, ref, _ in pairs if not ref]
    if empty:
        raise ScoringError(f"{len(empty)} references are empty after normalization (e.g. {empty[0]})")
    return pairs


def score(references: dict[str, str], hypotheses: dict[str, str]) -> Scores:
    """Score hypotheses against references, paired by utterance id (see :func:`paired`)."""
    pairs = paired(references, hypotheses)
    refs = [ref for _, ref, _ in pairs]
    hyps = [hyp for _, _, hyp in pairs]
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    word_count = sum(len(r.split()) for r in refs)
    char_count = sum(len(r) for r in refs)
    word_errors = words.substitutions + words.deletions + words.insertions
    char_errors = chars.substitutions + chars.deletions + chars.insertions
    return Scores(
        wer=100.0 * word_errors / word_count,
        cer=100.0 * char_errors / char_count,
        utterances=len(pairs),
        words=word_count,
        characters=char_count,
        word_errors=word_errors,
        char_errors=char_errors,
    )


def read_transcripts(path: str | Path) -> dict[str, str]:
    """Transcripts by utterance id from a Kaldi-style text file or a JSON-lines manifest.

    A manifest (first non-blank line starts with ``{``) is keyed by the audio
    file's name without extension; a text file by its first field.
    """
    path = Path(path)
    if not path.is_file():
        raise ScoringError(f"{path}: no such file")
    lines = path.read_text(encoding="utf-8").splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("{"):
        try:
            return {u.utt_id: u.text for u in read_manifest(path)}
        except ManifestError as error:
            raise ScoringError(str(error)) from None
    transcripts: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        utt_id, _, text = line.strip().partition(" ")
        if utt_id in transcripts:
            raise ScoringError(f"{path}:{number}: utterance id {utt_id} appears twice")
        transcripts[utt_id] = text
    return transcripts


def write_details(out_dir: str | Path, references: dict[str, str], hypotheses: dict[str, str], scores: Scores) -> None:
    """Write ``scores.json`` and jiwer's word alignment of every utterance, by id."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scores.json").write_text(json.dumps(asdict(scores), indent=2) + "\n", encoding="utf-8")
    with (out_dir / "alignments.txt").open("w", encoding="utf-8") as out:
        for utt_id in sorted(references):
            pair = jiwer.process_words(normalize(references[utt_id]), normalize(hypotheses[utt_id]))
            block = jiwer.visualize_alignment(pair, show_measures=False).strip()
            out.write(block.replace("=== SENTENCE 1 ===", f"=== {utt_id} ===") + "\n\n")
