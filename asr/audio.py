"""Reading audio files into mono float waveforms at the model's sample rate.

soundfile reads WAV, FLAC, OGG and NIST SPHERE without external programs, so
it is the one reader used everywhere (``torchaudio.load`` would need
torchcodec). Every failure becomes an :class:`AudioError` that names the file
and the reason, so callers can report a bad file on one line and go on.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

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
    if not Path(path).is_file():  # libsndfile would only say "System error."
        raise AudioError(path, "no such file")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(path, f"not readable as audio ({_short(error)})") from None
    if info.frames <= 0:
        raise AudioError(path, "contains no audio samples")
    return info.frames, info.samplerate


def load_audio(source: str | Path | bytes, sample_rate: int, name: str | None = None) -> torch.Tensor:
    """Load a file, or a file's bytes, whole as a 1-D float32 tensor at ``sample_rate``, mixed to mono.

    ``name`` is what errors call the audio (by default the path).
    """
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    with Recording(opened, name or str(source)) as recording:
        return recording.read(sample_rate)


class Recording:
    """An audio file (a path or an open binary file) or an array, read a window at a time.

    Long recordings are never held in memory whole: :meth:`windows` seeks and
    reads one window, mixes it to mono and resamples it, so memory depends on
    the window length, not on the recording's.
    """

    def __init__(self, source: str | Path | BinaryIO | np.ndarray | torch.Tensor, name: str, rate: int | None = None):
        self.name = name
        self._file: soundfile.SoundFile | None = None
        if isinstance(source, (np.ndarray, torch.Tensor)):
            if rate is None:
                raise ValueError(f"{name}: an array needs its sample rate")
            samples = np.asarray(source.cpu() if isinstance(source, torch.Tensor) else source, dtype=np.float32)
            self._array = samples[:, None] if samples.ndim == 1 else samples
            self.rate, self.frames = rate, self._array.shape[0]
        else:
            if isinstance(source, (str, Path)) and not Path(source).is_file():
                raise AudioError(name, "no such file")
            try:
                self._file = soundfile.SoundFile(source if not isinstance(source, Path) else str(source))
            except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
                raise AudioError(name, f"not readable as audio ({_short(error)})") from None
            self.rate, self.frames = self._file.samplerate, self._file.frames
        if self.frames <= 0:
            self.close()
            raise AudioError(name, "contains no audio samples")

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    def windows(self, sample_rate: int, window_seconds: float, step_seconds: float) -> Iterator[tuple[torch.Tensor, bool]]:
        """``(mono waveform at sample_rate, is last)`` for windows starting every ``step_seconds``.

        One window when the recording is no longer than ``window_seconds``.
        """
        for index in itertools.count():
            first = round(index * step_seconds * self.rate)
            last = first + window_seconds * self.rate >= self.frames
            count = self.frames - first if last else round(window_seconds * self.rate)
            yield prepare_waveform(self._read(first, count), self.rate, sample_rate), last
            if last:
                return

    def read(self, sample_rate: int) -> torch.Tensor:
        """The whole recording as one mono waveform at ``sample_rate``."""
        return prepare_waveform(self._read(0, self.frames), self.rate, sample_rate)

    def _read(self, first: int, count: int) -> torch.Tensor:
        if self._file is None:
            samples = self._array[first : first + count]
        else:
            try:
                self._file.seek(first)
                if self._file.subtype == "PCM_16":
                    # libsndfile scales 16-bit samples by 1/32768 too, but its conversion to float is
                    # slower than numpy's: this halves the time to load a 16-bit file.
                    samples = self._file.read(count, dtype="int16", always_2d=True).astype(np.float32) / 32768
                else:
                    samples = self._file.read(count, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
                raise AudioError(self.name, f"not readable as audio ({_short(error)})") from None
        if not np.isfinite(samples).all():
            raise AudioError(self.name, "contains non-finite samples")
        return torch.as_tensor(samples)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare_waveform(waveform: torch.Tensor, rate: int, sample_rate: int) -> torch.Tensor:
    """Mix a ``(samples,)`` or ``(samples, channels)`` waveform to mono at ``sample_rate``."""
    waveform = torch.as_tensor(waveform, dtype=torch.float32)
    if waveform.dim() == 2:
        waveform = waveform[:, 0] if waveform.shape[1] == 1 else waveform.mean(dim=1)
    if rate != sample_rate:
        waveform = resample(waveform, rate, sample_rate)
    return waveform.contiguous()


# librosa's "kaiser_best" filter in torchaudio's terms. torchaudio's default
# (a Hann-windowed sinc 6 zero crossings wide) leaves what lies above the lower
# rate's band only about 30 dB down; this one about 70 dB (16 -> 8 -> 16 kHz on
# an AN4 utterance: 29 dB against 68 dB above 4.5 kHz), so a recording at 8 or
# 44.1 kHz reaches the features without images or aliases of its speech.
_KAISER_BEST = {"lowpass_filter_width": 16, "rolloff": 0.945, "resampling_method": "sinc_interp_kaiser", "beta": 14.769656459379492}


def resample(waveform: torch.Tensor, rate: int, new_rate: int) -> torch.Tensor:
    """``waveform`` (samples last) from ``rate`` to ``new_rate`` Hz: the one resampler of
    training and inference, so both see a recording at another rate the same way."""
    return torchaudio.functional.resample(waveform, rate, new_rate, **_KAISER_BEST)


def _short(error: Exception) -> str:
    """The first line of an exception's message, for one-line reports (libsndfile's reason alone)."""
    if isinstance(error, soundfile.LibsndfileError):
        return error.error_string
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
