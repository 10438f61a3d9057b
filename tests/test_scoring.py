import json
import subprocess
import sys
from pathlib import Path

import pytest

from asr.cli import main
from asr.scoring import ScoringError, read_transcripts, score, write_details


def test_corpus_level_not_mean_of_utterances() -> None:
    refs = {"a": "one two three four five six seven eight nine ten", "b": "yes"}
    hyps = {"a": "one two three four five six seven eight nine ten", "b": "no"}
    scores = score(refs, hyps)
    assert scores.wer == pytest.approx(100 / 11)  # 1 error over 11 words, not (0% + 100%) / 2
    assert scores.cer == pytest.approx(100 * 3 / (48 + 3))  # "no" for "yes": 3 character edits
    assert (scores.utterances, scores.words, scores.word_errors) == (2, 11, 1)


def test_both_sides_are_normalized() -> None:
    assert score({"a": "Hello, World"}, {"a": "hello world"}).wer == 0.0


def test_mismatched_ids_are_an_error() -> None:
    with pytest.raises(ScoringError, match="have no hypothesis"):
        score({"a": "x", "b": "y"}, {"a": "x"})
    with pytest.raises(ScoringError, match="have no reference"):
        score({"a": "x"}, {"a": "x", "c": "z"})


def test_reads_kaldi_text_and_manifests(tmp_path: Path) -> None:
    (tmp_path / "text").write_text("utt1 hello world\nutt2 \n")
    assert read_transcripts(tmp_path / "text") == {"utt1": "hello world", "utt2": ""}
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio_filepath": "/x/utt1.wav", "duration": 1, "text": "hi"}) + "\n")
    assert read_transcripts(tmp_path / "m.jsonl") == {"utt1": "hi"}
    (tmp_path / "dup").write_text("u a\nu b\n")
    with pytest.raises(ScoringError, match="appears twice"):
        read_transcripts(tmp_path / "dup")


def test_details_hold_alignments_by_id(tmp_path: Path) -> None:
    refs, hyps = {"u1": "a b c", "u2": "d e"}, {"u1": "a x c", "u2": "d"}
    write_details(tmp_path, refs, hyps, score(refs, hyps))
    alignments = (tmp_path / "alignments.txt").read_text()
    assert "=== u1 ===" in alignments and "=== u2 ===" in alignments
    assert json.loads((tmp_path / "scores.json").read_text())["wer"] == pytest.approx(40.0)


def test_score_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "ref").write_text("u1 a b c\nu2 d e\n")
    (tmp_path / "hyp").write_text("u1 a x c\nu2 d\n")
    assert main(["score", str(tmp_path / "ref"), str(tmp_path / "hyp")]) == 0
    assert "WER 40.00%" in capsys.readouterr().out
    (tmp_path / "hyp").write_text("u1 a x c\nu3 d\n")
    assert main(["score", str(tmp_path / "ref"), str(tmp_path / "hyp")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "u2" in err and len(err.splitlines()) == 1


def test_error_analysis_splits_letters_from_words(tmp_path: Path) -> None:
    """benchmarks/error_analysis.py: letter and word errors add up to the WER's, substitutions listed."""
    (tmp_path / "ref.txt").write_text("u1 m a r k\nu2 october fifth\nu3 yes\n")
    (tmp_path / "hyp.txt").write_text("u1 n a r k t\nu2 november fifth\nu3 yes\n")
    script = Path(__file__).parent.parent / "benchmarks" / "error_analysis.py"
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=True)
    out = result.stdout
    assert "utterances: 3, 2 with an error" in out
    assert "all words: 3 errors in 7 words" in out  # m->n, inserted t, october->november
    assert "spelled letters: 2 errors in 4 words (50.00%)" in out
    assert "other words: 1 errors in 3 words (33.33%)" in out
    assert "m -> n: 1" in out and "october -> november: 1" in out
    assert score(read_transcripts(tmp_path / "ref.txt"), read_transcripts(tmp_path / "hyp.txt")).word_errors == 3
    (tmp_path / "hyp.txt").write_text("u1 n a r k\n")
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0 and result.stderr.strip().startswith("error:") and len(result.stderr.splitlines()) == 1
