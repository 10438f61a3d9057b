"""asr: speech recognition with log-mel features, a bidirectional LSTM and CTC."""

__version__ = "0.1.0"
