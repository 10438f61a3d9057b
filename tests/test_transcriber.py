"""Transcription as a product: the Python API, long recordings, word times, output formats.

The model is real and trained here (``memorized_model``): it knows a dozen AN4
utterances by heart, so a recording made by joining them has a known
transcript and known word spans.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile
import torch

import asr
from asr.audio import AudioError, load_audio
from asr.cli import main
from asr.data import Utterance, write_manifest


def joined_recording(utterances: list[Utterance], seconds: float, seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Utterances in random order, end to end, until ``seconds``; and each one's ``(start, end, text)``."""
    rng = random.Random(seed)
    waves = {u.audio_filepath: load_audio(u.audio_filepath, 16000).numpy() for u in utterances}
    pieces, spans, total = [], [], 0
    while total < seconds * 16000:
        utterance = rng.choice(utterances)
        wave = waves[utterance.audio_filepath]
        spans.append((total / 16000, (total + len(wave)) / 16000, utterance.text))
        pieces.append(wave)
        total += len(wave)
    return np.concatenate(pieces), spans


def words_in_their_spans(words: list[asr.Word], spans: list[tuple[float, float, str]], tolerance: float) -> float:
    """Of the reference words recognized correctly, the share whose times lie within their own utterance's span.

    Hypothesis and reference are aligned by jiwer over the whole recording, so a
    word is checked against the utterance it really belongs to.
    """
    reference = [(word, start, end) for start, end, text in spans for word in text.split()]
    output = jiwer.process_words(" ".join(w for w, _, _ in reference), " ".join(w.word for w in words))
    inside = total = 0
    for chunk in output.alignments[0]:
        if chunk.type != "equal":
            continue
        for offset in range(chunk.ref_end_idx - chunk.ref_start_idx):
            _, start, end = reference[chunk.ref_start_idx + offset]
            word = words[chunk.hyp_start_idx + offset]
            total += 1
            inside += start - tolerance <= word.start <= word.end <= end + tolerance
    return inside / max(total, 1)


@pytest.fixture(scope="module")
def model(memorized_model: tuple[Path, list[Utterance]]) -> asr.Transcriber:
    return asr.load(memorized_model[0])


def test_api_transcribes_paths_arrays_and_lists(model: asr.Transcriber, memorized_model: tuple[Path, list[Utterance]], tmp_path: Path) -> None:
    _, utterances = memorized_model
    first = utterances[0]
    result = model.transcribe(first.audio_filepath)
    assert isinstance(result, asr.Transcript) and result.text == first.text
    assert [w.word for w in result.words] == first.text.split()
    assert all(0 <= w.start <= w.end <= result.duration and 0 < w.confidence <= 1 for w in result.words)
    assert result.duration == pytest.approx(first.duration, abs=1e-3)
    # The same speech as a 44.1 kHz stereo array.
    samples, rate = soundfile.read(first.audio_filepath, dtype="float32")
    stereo = np.stack([samples, samples], 1)
    resampled = torch.from_numpy(stereo.T.copy())
    import torchaudio.functional

    stereo_44k = torchaudio.functional.resample(resampled, rate, 44100).T.numpy()
    # Resampling there and back is not bit-exact, and a model that memorized a
    # dozen files sits on a knife edge ("yees" for "yes" on one CPU): at most one
    # character may differ, where a wrong rate or channel mix garbles the text.
    heard = model.transcribe(stereo_44k, sample_rate=44100).text
    assert round(jiwer.cer(first.text, heard) * len(first.text)) <= 1, heard
    # A list: in order, a bad file marked and the rest unaffected.
    (tmp_path / "notes.wav").write_text("not audio")
    results = model.transcribe([utterances[1].audio_filepath, str(tmp_path / "notes.wav"), utterances[2].audio_filepath])
    assert [r.text for r in results] == [utterances[1].text, "", utterances[2].text]
    assert results[1].error.startswith("not readable as audio") and results[0].error is None
    with pytest.raises(AudioError, match="notes.wav: not readable as audio"):
        model.transcribe(str(tmp_path / "notes.wav"))


def test_ten_minutes_joined_keep_each_utterances_words_in_its_span(model: asr.Transcriber, memorized_model: tuple[Path, list[Utterance]]) -> None:
    audio, spans = joined_recording(memorized_model[1], 600)
    result = model.transcribe(audio, sample_rate=16000)
    reference = " ".join(text for _, _, text in spans)
    assert jiwer.wer(reference, result.text) < 0.15  # about 8% measured: joined, even a memorized model slips a little
    assert all(a.start <= b.start for a, b in zip(result.words, result.words[1:]))  # seams keep words in order
    assert words_in_their_spans(result.words, spans, tolerance=0.0) > 0.8  # 0.90 measured
    assert words_in_their_spans(result.words, spans, tolerance=0.3) > 0.95


def test_seams_neither_lose_nor_double_words(memorized_model: tuple[Path, list[Utterance]]) -> None:
    """Short windows (a seam every 4 s) give what one window over the whole recording gives."""
    audio, spans = joined_recording(memorized_model[1], 120, seed=1)
    whole = asr.load(memorized_model[0], options=asr.TranscribeOptions(window_seconds=200, segment_seconds=200))
    seamed = asr.load(memorized_model[0], options=asr.TranscribeOptions(window_seconds=8, overlap_seconds=4, segment_seconds=10))
    one, many = whole.transcribe(audio, sample_rate=16000), seamed.transcribe(audio, sample_rate=16000)
    assert len(many.words) == pytest.approx(len(one.words), rel=0.03)
    assert jiwer.wer(one.text, many.text) < 0.05
    assert words_in_their_spans(many.words, spans, tolerance=0.3) > 0.95


PEAK_MEMORY = """
import resource, sys
from asr.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
sys.exit(code)
"""


def test_memory_stays_flat_as_the_recording_grows(memorized_model: tuple[Path, list[Utterance]], tmp_path: Path) -> None:
    peaks = {}
    for minutes in (1, 10):
        audio, _ = joined_recording(memorized_model[1], minutes * 60)
        path = tmp_path / f"{minutes}min.wav"
        soundfile.write(path, audio, 16000)
        del audio
        result = subprocess.run(
            [sys.executable, "-c", PEAK_MEMORY, "transcribe", str(memorized_model[0]), str(path), "--format", "json", "--device", "cpu"],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        peaks[minutes] = int(result.stdout.strip().splitlines()[-1])
        assert json.loads("\n".join(result.stdout.strip().splitlines()[:-1]))[0]["duration"] >= minutes * 60
    assert peaks[10] <= 2 * peaks[1], peaks
    assert peaks[10] - peaks[1] < 100, peaks  # MB: ten times the audio costs almost nothing more


def test_cli_inputs_and_every_output_format(memorized_model: tuple[Path, list[Utterance]], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model_path, utterances = memorized_model
    folder = tmp_path / "audio"
    for speaker in ("a", "b"):
        (folder / speaker).mkdir(parents=True)
    chosen = utterances[:3]
    copies = [folder / "a" / "one.sph", folder / "b" / "one.sph", folder / "b" / "two.sph"]
    for utterance, copy in zip(chosen, copies):
        copy.write_bytes(Path(utterance.audio_filepath).read_bytes())
    (folder / "b" / "readme.txt").write_text("not audio, and not picked up from a folder")
    write_manifest(tmp_path / "set.jsonl", chosen)

    # A folder (recursive, audio only), to one file per input named after it.
    for fmt in ("txt", "json", "tsv", "srt", "vtt"):
        assert main(["transcribe", str(model_path), str(folder), "--format", fmt, "--output-dir", str(tmp_path / fmt)]) == 0
    assert (tmp_path / "txt/a/one.txt").read_text() == chosen[0].text + "\n"
    assert json.loads((tmp_path / "json/b/two.json").read_text())["text"] == chosen[2].text
    tsv = (tmp_path / "tsv/b/one.tsv").read_text().splitlines()
    assert tsv[0] == "start\tend\tword\tconfidence" and [row.split("\t")[2] for row in tsv[1:]] == chosen[1].text.split()
    srt = (tmp_path / "srt/a/one.srt").read_text()
    assert srt.startswith("1\n00:00:0") and " --> " in srt and chosen[0].text.split()[0] in srt
    assert (tmp_path / "vtt/a/one.vtt").read_text().startswith("WEBVTT\n\n00:00:")
    capsys.readouterr()

    # A manifest and a glob pattern to standard output, as JSON lines and as one JSON array.
    assert main(["transcribe", str(model_path), str(tmp_path / "set.jsonl"), "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == [u.text for u in chosen]
    assert main(["transcribe", str(model_path), str(folder / "*" / "*.sph"), "--format", "json"]) == 0
    array = json.loads(capsys.readouterr().out)
    assert [item["source"] for item in array] == [str(c) for c in copies]

    # Subtitles of several recordings on one stream make no sense: a one-line refusal.
    assert main(["transcribe", str(model_path), str(folder), "--format", "srt"]) == 2
    assert "need --output-dir" in capsys.readouterr().err
    # A pattern that matches nothing is reported; the rest are still transcribed; the exit status says so.
    assert main(["transcribe", str(model_path), str(tmp_path / "nothing*.wav"), str(copies[0])]) == 1
    captured = capsys.readouterr()
    assert "matches no files" in captured.err and captured.out == f"{copies[0]}\t{chosen[0].text}\n"
