import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.audio import AudioError
from asr.data import (
    BucketBatchSampler,
    ManifestError,
    SpeechDataset,
    Utterance,
    collate,
    encodable,
    make_utterance,
    read_manifest,
    refuse_test_data,
    write_manifest,
)
from asr.text import Tokenizer, TokenizerError


def test_manifest_round_trip_resolves_relative_paths(tmp_path: Path) -> None:
    utterances = [Utterance("a.wav", 1.5, "yes"), Utterance("/abs/b.flac", 2.0, "no")]
    assert write_manifest(tmp_path / "m.jsonl", utterances) == 2
    first = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])
    assert set(first) == {"audio_filepath", "duration", "text"}
    read = read_manifest(tmp_path / "m.jsonl")
    assert read[0].audio_filepath == str(tmp_path / "a.wav")
    assert read[1].audio_filepath == "/abs/b.flac"
    assert [u.utt_id for u in read] == ["a", "b"]


def test_malformed_manifest_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"audio_filepath": "a.wav", "duration": 1, "text": "x"}\n{"duration": 2}\n')
    with pytest.raises(ManifestError, match=r"bad.jsonl:2"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "absent.jsonl")


def test_make_utterance_checks_audio_and_text(an4_files: list[Path], tmp_path: Path) -> None:
    utterance = make_utterance(an4_files[0], "<s> H E L L O </s>".replace("<s>", "").replace("</s>", ""))
    assert utterance.text == "h e l l o"
    assert utterance.duration > 0.5
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav"):
        make_utterance(empty, "yes")
    with pytest.raises(TokenizerError):
        make_utterance(an4_files[0], " ?! ")


def test_encodable_filters_unknown_characters_and_overlong_labels() -> None:
    tokenizer = Tokenizer.from_texts(["abc "])
    utterances = [
        Utterance("ok.wav", 1.0, "ab c"),
        Utterance("oov.wav", 1.0, "abz"),
        Utterance("long.wav", 0.1, "aaaa"),  # 4 letters + 3 blanks between repeats > 2 frames
    ]
    kept, problems = encodable(utterances, tokenizer, output_frames=lambda seconds: int(seconds * 20))
    assert [u.audio_filepath for u in kept] == ["ok.wav"]
    assert len(problems) == 2
    assert "oov.wav" in problems[0] and "'z'" in problems[0]
    assert "long.wav" in problems[1] and "7 CTC steps" in problems[1]


def test_dataset_skips_unreadable_files(an4_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tokenizer = Tokenizer.from_texts(["abcdefghijklmnopqrstuvwxyz "])
    utterances = [Utterance(str(an4_files[0]), 1.0, "yes"), Utterance(str(tmp_path / "gone.wav"), 1.0, "no")]
    dataset = SpeechDataset(utterances, tokenizer, 16000)
    batch = collate([dataset[0], dataset[1]])
    assert batch is not None and batch.indices == [0]
    assert batch.targets.tolist() == tokenizer.encode("yes")
    assert "gone.wav: no such file" in capsys.readouterr().out
    assert collate([dataset[1]]) is None


def test_bucket_sampler_caps_padded_frames_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(100, 2000, size=500).tolist()
    sampler = BucketBatchSampler(frames, max_batch_frames=8000, seed=3)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(500))
    for batch in batches:
        assert len(batch) == 1 or max(frames[i] for i in batch) * len(batch) <= 8000
    assert batches == BucketBatchSampler(frames, max_batch_frames=8000, seed=3).batches()
    sampler.set_epoch(1)
    assert sampler.batches() != batches  # a new order every epoch
    # Short utterances make large batches, long ones small.
    sizes = {len(b): max(frames[i] for i in b) for b in batches}
    assert max(sizes) > 3 * min(sizes)


def test_sortagrad_epochs_come_shortest_first() -> None:
    frames = list(range(1000, 0, -7))
    sampler = BucketBatchSampler(frames, max_batch_frames=3000, seed=0, jitter=0.0, sorted_epochs=1)
    longest = [max(frames[i] for i in batch) for batch in sampler.batches()]
    assert longest == sorted(longest)
    sampler.set_epoch(1)
    longest = [max(frames[i] for i in batch) for batch in sampler.batches()]
    assert longest != sorted(longest)


def test_test_data_is_recognized_by_its_names(tmp_path: Path) -> None:
    def utterance(path: str) -> Utterance:
        return Utterance(audio_filepath=path, duration=1.0, text="a")

    for manifest, audio in [
        ("test.jsonl", "/corpus/an4/wav/an4_clstk/fash/an251-fash-b.sph"),
        ("dev.jsonl", "/corpus/an4/wav/an4test_clstk/fcaw/an406-fcaw-b.sph"),
        ("dev.jsonl", "/corpus/LibriSpeech/test-clean/1089/134686/1089-134686-0000.flac"),
        ("eval92.jsonl", "/wsj/a.wav"),
    ]:
        with pytest.raises(ManifestError, match="refusing test data"):
            refuse_test_data(tmp_path / manifest, [utterance(audio)])
    # Words that merely contain the letters are not test sets, nor are the user's folders above the corpus.
    refuse_test_data(tmp_path / "dev.jsonl", [utterance("/home/latest/contest/attestations/a.wav")])
    refuse_test_data(tmp_path / "dev.jsonl", [utterance("/home/me/test/corpus/an4/wav/an4_clstk/fash/a.sph")])
