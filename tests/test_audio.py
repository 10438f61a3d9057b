from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr.audio import AudioError, audio_info, load_audio


def test_reads_nist_sphere(an4_files: list[Path]) -> None:
    frames, rate = audio_info(an4_files[0])
    waveform = load_audio(an4_files[0], 16000)
    assert rate == 16000
    assert waveform.dtype == torch.float32 and waveform.dim() == 1
    assert waveform.numel() == frames
    assert 0 < waveform.abs().max() <= 1.0


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg")])
def test_mixes_to_mono_and_resamples(an4_files: list[Path], tmp_path: Path, fmt: str, ext: str) -> None:
    original = load_audio(an4_files[0], 16000).numpy()
    stereo = np.stack([original, original], axis=1)
    path = tmp_path / f"stereo.{ext}"
    soundfile.write(path, stereo[::2], 8000, format=fmt)  # 8 kHz, two channels
    waveform = load_audio(path, 16000)
    assert abs(waveform.numel() - original.size) <= 2
    # Resampled speech keeps its envelope: compare energy in 100 ms blocks.
    n = min(waveform.numel(), original.size) // 1600 * 1600
    ours = (waveform[:n].numpy().reshape(-1, 1600) ** 2).mean(1)
    theirs = (original[:n].reshape(-1, 1600) ** 2).mean(1)
    assert np.corrcoef(ours, theirs)[0, 1] > 0.95


def test_missing_empty_and_non_audio_files_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), 16000)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    cases = {tmp_path / "missing.wav": "no such file", empty: "no audio", text: "not readable as audio"}
    for path, reason in cases.items():
        with pytest.raises(AudioError, match=reason) as error:
            load_audio(path, 16000)
        assert str(path) in str(error.value)
        assert "\n" not in str(error.value)
        with pytest.raises(AudioError):
            audio_info(path)
