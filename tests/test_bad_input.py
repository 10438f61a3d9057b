"""Broken files inside otherwise good manifests: reported on one line each, skipped, the rest go on."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr.audio import load_audio
from asr.checkpoint import ASRModel, ModelFileError, load_model, save_model
from asr.cli import main
from asr.data import Utterance, write_manifest
from asr.features import FeatureConfig, FeatureExtractor
from asr.model import CTCModel, ModelConfig
from asr.text import Tokenizer
from asr.transcribe import recognize


@pytest.fixture
def bad_files(tmp_path: Path) -> list[Path]:
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), 16000)
    text = tmp_path / "text.flac"
    text.write_text("definitely not audio")
    return [tmp_path / "missing.wav", empty, text]


@pytest.fixture
def untrained_model(tmp_path: Path) -> Path:
    """A real (randomly initialized) model file: enough to exercise the plumbing."""
    torch.manual_seed(0)
    tokenizer = Tokenizer.from_texts(["abcdefghijklmnopqrstuvwxyz '"])
    model = CTCModel(ModelConfig(vocab_size=len(tokenizer), conv_channels=16, hidden_size=16, num_layers=1))
    path = tmp_path / "model.pt"
    save_model(path, ASRModel(FeatureExtractor(FeatureConfig()), model, tokenizer))
    return path


def test_decode_skips_broken_manifest_lines(an4_files: list[Path], bad_files: list[Path], untrained_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = [Utterance(str(p), 1.0, "yes") for p in an4_files[:3]]
    broken = [Utterance(str(p), 1.0, "no") for p in bad_files]
    write_manifest(tmp_path / "m.jsonl", [good[0], broken[0], good[1], broken[1], broken[2], good[2]])
    assert main(["decode", str(untrained_model), str(tmp_path / "m.jsonl"), "--out-dir", str(tmp_path / "out"), "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    hyp_ids = [line.split(" ")[0] for line in (tmp_path / "out/hyp.txt").read_text().splitlines()]
    assert hyp_ids == [Path(u.audio_filepath).stem for u in good]
    for path, reason in zip(bad_files, ["no such file", "no audio", "not readable as audio"]):
        assert sum(str(path) in line and reason in line for line in out.splitlines()) == 1
    assert "3 unreadable" in out


def test_stats_skip_broken_manifest_lines(an4_files: list[Path], bad_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    utterances = [Utterance(str(p), 1.0, "yes") for p in an4_files[:2]] + [Utterance(str(p), 1.0, "no") for p in bad_files]
    write_manifest(tmp_path / "m.jsonl", utterances)
    (tmp_path / "c.yaml").write_text("{}\n")
    args = ["stats", "--config", str(tmp_path / "c.yaml"), "--manifest", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "s.json"), "--num-workers", "0"]
    assert main(args) == 0
    assert len(json.loads((tmp_path / "s.json").read_text())["mean"]) == 80
    assert capsys.readouterr().out.count("warning: skipping") == 3


def test_corrupt_model_file_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="junk.pt: not a readable model file"):
        load_model(tmp_path / "junk.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not an asr model file"):
        load_model(tmp_path / "other.pt")


def test_model_file_round_trip_is_exact(untrained_model: Path, an4_files: list[Path]) -> None:
    model = load_model(untrained_model)
    again = load_model(untrained_model)
    waveform = load_audio(an4_files[0], 16000)
    lengths = torch.tensor([waveform.numel()])
    assert recognize(model, waveform[None], lengths) == recognize(again, waveform[None], lengths)
