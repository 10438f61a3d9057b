"""``asr serve`` over real HTTP on loopback: uploads good and bad, and many at once."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from asr.data import Utterance
from asr.serve import post_audio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(memorized_model: tuple[Path, list[Utterance]]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "asr", "serve", str(memorized_model[0]), "--port", str(port), "--max-upload-mb", "1", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"asr serve exited: {process.stderr.read()[-2000:]}")
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("asr serve did not answer /health within 120 s")
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_health_and_openapi_schema(service: str) -> None:
    with urllib.request.urlopen(service + "/health") as response:
        assert json.load(response) == {"status": "ok", "decoding": "greedy"}
    with urllib.request.urlopen(service + "/openapi.json") as response:
        schema = json.load(response)
    assert "/transcribe" in schema["paths"] and "post" in schema["paths"]["/transcribe"]


def test_an_upload_is_transcribed_with_word_times(service: str, memorized_model: tuple[Path, list[Utterance]]) -> None:
    utterance = memorized_model[1][0]
    status, answer = post_audio(service + "/transcribe", "a.sph", Path(utterance.audio_filepath).read_bytes())
    assert status == 200, answer
    assert answer["text"] == utterance.text and answer["source"] == "a.sph" and answer["error"] is None
    assert [w["word"] for w in answer["words"]] == utterance.text.split()
    assert all(0 <= w["start"] <= w["end"] <= answer["duration"] for w in answer["words"])


def test_bad_uploads_get_clear_4xx_answers(service: str) -> None:
    status, answer = post_audio(service + "/transcribe", "notes.txt", b"these are not audio samples" * 10)
    assert status == 415 and answer["detail"].startswith("notes.txt: not readable as audio")
    status, answer = post_audio(service + "/transcribe", "empty.wav", b"")
    assert status == 400 and "empty" in answer["detail"]
    # Over the limit: answered from the headers alone, before a byte of the body is sent.
    # (Sending the body first raced the answer: the server closes after it, and a
    # slow client could see the connection reset while still sending.)
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(service).netloc, timeout=60)
    connection.putrequest("POST", "/transcribe")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(2 * 2**20))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "limit" in json.load(response)["detail"]
    connection.close()
    request = urllib.request.Request(service + "/transcribe", b"{}", {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 422  # no file field
    with urllib.request.urlopen(service + "/health") as response:  # and the service is still up
        assert response.status == 200


def test_parallel_requests_all_get_their_own_answer(service: str, memorized_model: tuple[Path, list[Utterance]]) -> None:
    utterances = memorized_model[1] * 3  # 36 requests, 20 at a time
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda u: post_audio(service + "/transcribe", Path(u.audio_filepath).name, Path(u.audio_filepath).read_bytes()), utterances))
    assert [status for status, _ in answers] == [200] * len(utterances)
    assert [answer["text"] for _, answer in answers] == [u.text for u in utterances]
    assert [answer["source"] for _, answer in answers] == [Path(u.audio_filepath).name for u in utterances]
