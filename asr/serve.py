"""``asr serve``: the Python API over HTTP, on FastAPI and uvicorn.

``POST /transcribe`` takes one audio file as a multipart upload (field
``file``) and answers with the JSON of :class:`asr.Transcript`;
``GET /health`` says the service is up and what it decodes with; the OpenAPI
schema is at ``/openapi.json`` and browsable at ``/docs``.

Requests that arrive together are transcribed together: a single worker takes
whatever is queued (up to ``max_batch`` uploads) and runs it as one batch in a
thread, so the model is never used by two threads at once, and under load the
batches fill up instead of the requests contending for the CPU.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from asr.transcriber import Transcriber, Transcript

try:
    from fastapi import FastAPI, File, HTTPException, UploadFile
    from fastapi.responses import JSONResponse
except ImportError as error:  # the service is an optional extra
    raise ImportError("asr serve needs FastAPI and uvicorn: pip install 'asr[serve]'") from error


class Batcher:
    """Queues uploads and transcribes them in batches on one worker thread."""

    def __init__(self, transcriber: Transcriber, max_batch: int = 8, wait_seconds: float = 0.005) -> None:
        self.transcriber = transcriber
        self.max_batch = max_batch
        self.wait_seconds = wait_seconds  # how long the first request of a batch waits for company
        self.queue: asyncio.Queue[tuple[str, bytes, asyncio.Future[Transcript]]] = asyncio.Queue()
        # Always the same thread: the model is not shared, and its memory is reused rather than
        # spread over the allocator arenas of many threads (which grew memory under load).
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-model")
        self.trim = _release_freed_memory()

    async def transcribe(self, name: str, data: bytes) -> Transcript:
        future: asyncio.Future[Transcript] = asyncio.get_running_loop().create_future()
        await self.queue.put((name, data, future))
        return await future

    async def run(self) -> None:
        while True:
            items = [await self.queue.get()]
            deadline = time.monotonic() + self.wait_seconds
            while len(items) < self.max_batch:
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), max(0.0, deadline - time.monotonic())))
                except asyncio.TimeoutError:
                    break
            try:
                uploads = [(name, data) for name, data, _ in items]
                results = await asyncio.get_running_loop().run_in_executor(self.thread, self._transcribe, uploads)
            except Exception as error:  # a bug, not a bad upload: fail these requests, keep serving
                for _, _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, _, future), result in zip(items, results):
                if not future.done():  # the client may have gone away
                    future.set_result(result)

    def _transcribe(self, uploads: list[tuple[str, bytes]]) -> list[Transcript]:
        files = []
        for name, data in uploads:
            upload = io.BytesIO(data)
            upload.name = name
            files.append(upload)
        try:
            return self.transcriber.transcribe(files)
        finally:
            self.trim(0)


class UploadLimit:
    """ASGI middleware: a request declaring a body over ``max_bytes`` gets 413 before any of it is read.

    A body sent without a declared length is spooled to disk by the multipart
    parser and measured by the endpoint instead.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if scope["type"] == "http" and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse(too_large(self.max_bytes), status_code=413)
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


def too_large(max_bytes: int) -> dict[str, str]:
    return {"detail": f"the upload is larger than the limit of {max_bytes} bytes"}


def _release_freed_memory() -> Callable[[], object]:
    """glibc's ``malloc_trim``: give freed heap pages back to the system (a no-op elsewhere).

    Each batch is shaped by its uploads, so tensors of ever-changing sizes
    come and go; glibc keeps the freed pages, and a service's memory crept up
    under steady load. Trimming after each batch holds it flat.
    """
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda *_: 0


def create_app(transcriber: Transcriber, max_upload_bytes: int = 100 * 2**20, max_batch: int = 8) -> Any:
    """The FastAPI application (wrapped in the upload limit), ready for uvicorn."""
    batcher = Batcher(transcriber, max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(batcher.run())
        yield
        worker.cancel()

    app = FastAPI(title="asr", summary="Speech recognition: upload audio, get text with word timestamps.", lifespan=lifespan)
    method = "beam search with a language model" if transcriber.decoder else "greedy"

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Whether the service is up, and how it decodes."""
        return {"status": "ok", "decoding": method}

    @app.post("/transcribe")
    async def transcribe(file: UploadFile = File(..., description="an audio file: WAV, FLAC, OGG, SPHERE")) -> dict:
        """Transcribe one audio file: its text, and its words with start, end (seconds) and confidence."""
        name = file.filename or "upload"
        if file.size is not None and file.size > max_upload_bytes:
            raise HTTPException(413, too_large(max_upload_bytes)["detail"])
        data = await file.read()
        if not data:
            raise HTTPException(400, f"{name}: the upload is empty")
        result = await batcher.transcribe(name, data)
        if result.error is not None:
            raise HTTPException(415, f"{name}: {result.error}")
        return result.to_dict()

    return UploadLimit(app, max_upload_bytes)


def post_audio(url: str, name: str, data: bytes, timeout: float = 60.0) -> tuple[int, dict]:
    """Upload ``data`` as file ``name`` to ``url`` (multipart, standard library only): status and JSON answer.

    For scripts and tests; ``curl -F file=@a.wav URL`` does the same.
    """
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read())


def _json(raw: bytes) -> dict:
    return json.loads(raw.decode("utf-8"))
