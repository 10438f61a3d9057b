"""Reading audio files into mono float waveforms at the model's sample rate.

soundfile reads WAV, FLAC, OGG and NIST SPHERE without external programs, so
it is the one reader used everywhere (``torchaudio.load`` would need
torchcodec). Every failure becomes an :class:`AudioError` that names the file
and the reason, so callers can report a bad file on one line and go on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".sph", ".nist", ".aiff", ".aif")


class AudioError(Exception):
    """A file that cannot be used as audio; the message names the file and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def audio_info(path: str | Path) -> tuple[int, int]:
    """Return ``(num_frames, sample_rate)`` from the header, without decoding."""
    try:
        info = soundfile.info(str(path))
    except FileNotFoundError:
        raise AudioError(path, "no such file") from None
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(path, f"not readable as audio ({_short(error)})") from None
    if info.frames <= 0:
        raise AudioError(path, "contains no audio samples")
    return info.frames, info.samplerate


def load_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Load ``path`` as a 1-D float32 tensor at ``sample_rate``, mixed to mono."""
    if not Path(path).is_file():
        raise AudioError(path, "no such file")
    try:
        samples, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(path, f"not readable as audio ({_short(error)})") from None
    if samples.size == 0:
        raise AudioError(path, "contains no audio samples")
    if not np.isfinite(samples).all():
        raise AudioError(path, "contains non-finite samples")
    return prepare_waveform(torch.from_numpy(samples.mean(axis=1)), file_rate, sample_rate)


def prepare_waveform(waveform: torch.Tensor, rate: int, sample_rate: int) -> torch.Tensor:
    """Mix a ``(samples,)`` or ``(samples, channels)`` waveform to mono at ``sample_rate``."""
    waveform = torch.as_tensor(waveform, dtype=torch.float32)
    if waveform.dim() == 2:
        waveform = waveform.mean(dim=1)
    if rate != sample_rate:
        waveform = torchaudio.functional.resample(waveform, rate, sample_rate)
    return waveform.contiguous()


def _short(error: Exception) -> str:
    """The first line of an exception's message, for one-line reports."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
