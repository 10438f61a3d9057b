"""Word-level voting over decodings (asr.voting), and decoding at several speeds on real AN4 audio."""

from pathlib import Path

from asr.checkpoint import load_model
from asr.data import Utterance
from asr.transcribe import decode_utterances, model_outputs
from asr.voting import align_to, vote


def test_alignment_places_insertions_and_deletions() -> None:
    inserted, aligned = align_to("enter eight seven".split(), "enter eight x seven".split())
    assert aligned == ["enter", "eight", "seven"]
    assert inserted == [(), (), ("x",), ()]
    inserted, aligned = align_to("a b c".split(), "a c".split())
    assert aligned == ["a", None, "c"]
    inserted, aligned = align_to("a b".split(), "a b d e".split())
    assert inserted == [(), (), ("d", "e")]


def test_the_majority_wins_each_place() -> None:
    assert vote(["enter eighty seven", "enter eight seven", "enter eight seven"]) == "enter eight seven"
    assert vote(["h a n d", "h a m d", "h a m d"]) == "h a m d"


def test_without_a_majority_the_first_stands() -> None:
    assert vote(["b e r k e", "v e r k e", "d e r k e"]) == "b e r k e"
    assert vote(["one two", "one three"]) == "one two"  # two voters: both must agree


def test_insertions_and_deletions_need_a_majority() -> None:
    assert vote(["two oh one", "two oh one three", "two oh one three"]) == "two oh one three"
    assert vote(["two oh one", "two oh one three", "two oh one"]) == "two oh one"
    assert vote(["seven h nineteen", "seven nineteen", "seven nineteen"]) == "seven nineteen"
    assert vote(["", "yes", "yes"]) == "yes"
    assert vote(["yes", "", ""]) == ""


def test_one_decoding_is_returned_as_it_is() -> None:
    assert vote(["  enter  five "]) == "enter five"


def test_decoding_at_several_speeds_votes_over_real_decodings(memorized_model: tuple[Path, list[Utterance]]) -> None:
    path, utterances = memorized_model
    model = load_model(path)
    frames = {
        speed: sum(lengths.sum().item() for _, _, lengths in model_outputs(model, utterances, speed=speed))
        for speed in (0.9, 1.0, 1.1)
    }
    assert frames[0.9] > frames[1.0] > frames[1.1]  # the model really hears the audio slower and faster

    single = {speed: decode_utterances(model, utterances, speeds=[speed]) for speed in (1.0, 0.9, 1.1)}
    assert single[1.0].hypotheses == {u.utt_id: u.text for u in utterances}
    voted = decode_utterances(model, utterances, speeds=[1.0, 0.9, 1.1])
    assert voted.hypotheses == {
        utt_id: vote([single[speed].hypotheses[utt_id] for speed in (1.0, 0.9, 1.1)])
        for utt_id in single[1.0].hypotheses
    }
    assert voted.audio_seconds == single[1.0].audio_seconds  # the audio is counted once, the time thrice
