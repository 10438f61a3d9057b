"""asr: speech recognition with log-mel features, a bidirectional LSTM and CTC.

>>> import asr
>>> model = asr.load("exp/an4/model.pt")            # add lm="exp/an4/lm.arpa" for beam search
>>> result = model.transcribe("recording.wav")      # or a list, or an array with sample_rate=
>>> result.text, [(w.word, w.start, w.end, w.confidence) for w in result.words]
"""

from asr.alignment import Word
from asr.transcriber import Transcriber, TranscribeOptions, Transcript, load

__version__ = "0.1.0"
__all__ = ["Transcriber", "TranscribeOptions", "Transcript", "Word", "load"]
