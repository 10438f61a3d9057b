"""Writing transcripts: plain text, JSON, JSON lines, TSV of words, and SRT/WebVTT subtitles.

:func:`render` gives one recording's file; :class:`StreamWriter` puts many
recordings on one stream (standard output) in a form that stays valid there:
a JSON array, one JSON line each, TSV rows with the source in front.
Subtitles have no such form, so they go to standard output for one recording only.
"""

from __future__ import annotations

import json
from typing import TextIO

from asr.alignment import Word
from asr.transcriber import Transcript

FORMATS = ("txt", "json", "jsonl", "tsv", "srt", "vtt")
TSV_HEADER = "start\tend\tword\tconfidence"

# Subtitle cues: a new cue after a pause this long, or before one grows past these limits.
CUE_PAUSE = 0.8
CUE_SECONDS = 6.0
CUE_CHARACTERS = 84  # two lines of 42, the usual broadcast limit
CUE_LINGER = 0.5  # a cue stays at least this long past its last word (CTC marks a word's frames, not its sound)


def render(transcript: Transcript, fmt: str) -> str:
    """The whole file for one recording in format ``fmt``."""
    if fmt == "txt":
        return transcript.text + "\n"
    if fmt == "json":
        return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "jsonl":
        return json.dumps(transcript.to_dict(), ensure_ascii=False) + "\n"
    if fmt == "tsv":
        return TSV_HEADER + "\n" + "".join(_tsv_row(w) + "\n" for w in transcript.words)
    if fmt == "srt":
        return "".join(
            f"{n}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n\n"
            for n, (start, end, text) in enumerate(cues(transcript.words), start=1)
        )
    if fmt == "vtt":
        body = "".join(f"{_clock(start, '.')} --> {_clock(end, '.')}\n{text}\n\n" for start, end, text in cues(transcript.words))
        return "WEBVTT\n\n" + body
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


class StreamWriter:
    """Many recordings' transcripts on one text stream, each written as soon as it is ready."""

    def __init__(self, out: TextIO, fmt: str) -> None:
        self.out, self.fmt, self.count = out, fmt, 0

    def write(self, transcript: Transcript) -> None:
        if self.fmt == "txt":
            text = f"{transcript.source}\t{transcript.text}\n"
        elif self.fmt == "json":
            item = json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2)
            text = ("[\n" if self.count == 0 else ",\n") + item
        elif self.fmt == "tsv":
            header = "source\t" + TSV_HEADER + "\n" if self.count == 0 else ""
            text = header + "".join(f"{transcript.source}\t{_tsv_row(w)}\n" for w in transcript.words)
        else:  # jsonl, and srt/vtt of one recording (the command refuses several before it starts)
            text = render(transcript, self.fmt)
        self.out.write(text)
        self.out.flush()
        self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write("[]\n" if self.count == 0 else "\n]\n")
            self.out.flush()


def cues(words: list[Word]) -> list[tuple[float, float, str]]:
    """Group words into subtitle cues ``(start, end, text)``: break at pauses and at length limits."""
    groups: list[list[Word]] = []
    for word in words:
        current = groups[-1] if groups else None
        if (
            current is None
            or word.start - current[-1].end > CUE_PAUSE
            or word.end - current[0].start > CUE_SECONDS
            or sum(len(w.word) + 1 for w in current) + len(word.word) > CUE_CHARACTERS
        ):
            groups.append([word])
        else:
            current.append(word)
    result = []
    for index, group in enumerate(groups):
        end = group[-1].end + CUE_LINGER
        if index + 1 < len(groups):
            end = min(end, groups[index + 1][0].start)
        result.append((group[0].start, max(end, group[-1].end), " ".join(w.word for w in group)))
    return result


def _tsv_row(word: Word) -> str:
    return f"{word.start:.2f}\t{word.end:.2f}\t{word.word}\t{word.confidence:.3f}"


def _clock(seconds: float, decimal: str) -> str:
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{decimal}{rest % 1000:03d}"
