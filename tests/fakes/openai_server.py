"""A small, real HTTP/1.1 server that speaks enough of the OpenAI protocol for tests.

It runs its own asyncio loop in a background thread on 127.0.0.1 (a free port), so the real
`openai` SDK and its httpx transport are exercised end to end, and it works the same from sync
and async tests. Usage::

    with FakeOpenAI() as fake:
        fake.script(reply="Toma metformina [1].", delay=0, fail=None)
        settings = make_settings(llm_base_url=fake.base_url)
        ...
        assert fake.chat_requests[-1]["json"]["messages"][0]["role"] == "system"

Endpoints:

* `POST /v1/chat/completions`: `stream: true` answers Server-Sent Events in chunked transfer
  encoding (`data: {chat.completion.chunk}` … `data: [DONE]`); otherwise one `chat.completion`.
* `POST /v1/embeddings`: deterministic vectors seeded by a hash of each input (not normalised),
  honouring `encoding_format` (`float` or `base64`, the SDK's default) and `dimensions`.

Failure modes (`fail=`):

* `"http500"`: a 500 JSON error before any body.
* `"disconnect"`: headers and the first `disconnect_after` chunks, then the TCP connection is
  aborted (an incomplete chunked body on the client side).
* `"malformed"`: a `data:` line that is not JSON, after the first chunks.
* `"sse_error"`: an in-stream `{"error": …}` event, as OpenAI sends on server trouble.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

Failure = Literal["http500", "disconnect", "malformed", "sse_error"]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Script:
    reply: str = "Respuesta de prueba [1]."
    chunks: tuple[str, ...] | None = None  # explicit split; by default one chunk per word
    delay: float = 0.0  # seconds before the response (status line) is sent
    chunk_delay: float = 0.0  # seconds between streamed chunks
    fail: Failure | None = None
    disconnect_after: int = 2  # content chunks sent before "disconnect" / "malformed"
    embedding_dim: int = 384
    embedding_order: Literal["input", "reversed"] = "input"  # `index` is always correct

    def reply_chunks(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\s*\S+\s*", self.reply) or [self.reply]


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any = field(default=None)


def fake_embedding(text: str, dim: int = 384) -> np.ndarray:
    """The vector the fake returns for `text`: hash-seeded, deterministic, not normalised."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    return (np.random.default_rng(seed).standard_normal(dim) * 3.0).astype(np.float32)


class FakeOpenAI:
    """Context manager running the fake server; `script()` changes what it answers next."""

    def __init__(self, **script: Any) -> None:
        self._script = Script(**script)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- public API ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, **changes: Any) -> None:
        """Set how the following requests are answered (fields of `Script`; others keep)."""
        with self._lock:
            self._script = replace(self._script, **changes)

    def reset(self, **script: Any) -> None:
        """Forget recorded requests and go back to the default script (plus `script`)."""
        with self._lock:
            self._script = Script(**script)
            self._requests.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received: `{"method", "path", "headers", "json"}`, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/embeddings")]

    def start(self) -> FakeOpenAI:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, "127.0.0.1", 0)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # pragma: no cover - reported to the caller
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 2)
            loop.stop()

        loop.call_soon_threadsafe(lambda: loop.create_task(shutdown()))
        thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                keep_alive = await self._respond(request, writer)
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += data[:-2]
        else:
            body = b""
        request = _Request(method, path, headers, body)
        with contextlib.suppress(ValueError):
            request.payload = json.loads(body) if body else None
        with self._lock:
            self._requests.append(
                {"method": method, "path": path, "headers": headers, "json": request.payload}
            )
        return request

    @staticmethod
    def _head(status: int, content_type: str, extra: dict[str, str]) -> bytes:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Content-Type: {content_type}",
        ]
        lines += [f"{name}: {value}" for name, value in extra.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send_json(
        self, writer: asyncio.StreamWriter, status: int, payload: Any, keep_alive: bool
    ) -> None:
        body = json.dumps(payload).encode("utf-8")
        extra = {
            "Content-Length": str(len(body)),
            "Connection": "keep-alive" if keep_alive else "close",
        }
        writer.write(self._head(status, "application/json", extra) + body)
        await writer.drain()

    async def _respond(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        with self._lock:
            script = self._script
        keep_alive = request.headers.get("connection", "").lower() != "close"
        if script.delay:
            await asyncio.sleep(script.delay)
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method != "POST" or path not in ("/v1/chat/completions", "/v1/embeddings"):
            error = {"error": {"message": "not found", "type": "invalid_request_error"}}
            await self._send_json(writer, 404, error, keep_alive)
            return keep_alive
        if not isinstance(request.payload, dict):
            error = {"error": {"message": "body must be JSON", "type": "invalid_request_error"}}
            await self._send_json(writer, 400, error, keep_alive)
            return keep_alive
        if script.fail == "http500":
            error = {"error": {"message": "fake failure", "type": "server_error"}}
            await self._send_json(writer, 500, error, keep_alive)
            return keep_alive
        if path == "/v1/embeddings":
            await self._send_json(
                writer, 200, self._embeddings(request.payload, script), keep_alive
            )
            return keep_alive
        if request.payload.get("stream"):
            return await self._stream_chat(request.payload, script, writer, keep_alive)
        await self._send_json(writer, 200, self._completion(request.payload, script), keep_alive)
        return keep_alive

    # -- OpenAI payloads -----------------------------------------------------------------------

    @staticmethod
    def _embeddings(body: dict[str, Any], script: Script) -> dict[str, Any]:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs or []]
        dim = int(body.get("dimensions") or script.embedding_dim)
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text, dim)
            embedding: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
                if body.get("encoding_format") == "base64"
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        if script.embedding_order == "reversed":
            data.reverse()
        tokens = sum(len(t.split()) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", "fake-embedding"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @staticmethod
    def _completion(body: dict[str, Any], script: Script) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": script.reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    @staticmethod
    def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload)}\n\n".encode()

    async def _stream_chat(
        self,
        body: dict[str, Any],
        script: Script,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        extra = {
            "Transfer-Encoding": "chunked",
            "Cache-Control": "no-cache",
            "Connection": "keep-alive" if keep_alive else "close",
        }
        writer.write(self._head(200, "text/event-stream; charset=utf-8", extra))
        model = str(body.get("model", "fake"))

        async def send(event: bytes) -> None:
            writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            await writer.drain()

        await send(self._chunk(model, {"role": "assistant", "content": ""}))
        pieces = script.reply_chunks()
        if script.fail in ("disconnect", "malformed", "sse_error"):
            pieces = pieces[: script.disconnect_after]
        for number, piece in enumerate(pieces):
            if number and script.chunk_delay:
                await asyncio.sleep(script.chunk_delay)
            await send(self._chunk(model, {"content": piece}))
        if script.fail == "disconnect":
            writer.transport.abort()
            return False
        if script.fail == "malformed":
            await send(b'data: {"id": "chatcmpl-fake", "choices": [{"delta": \n\n')
        if script.fail == "sse_error":
            error = {"error": {"message": "fake overload", "type": "server_error"}}
            await send(f"data: {json.dumps(error)}\n\n".encode())
        await send(self._chunk(model, {}, "stop"))
        await send(b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return keep_alive


@contextlib.contextmanager
def fake_openai(**script: Any) -> Iterator[FakeOpenAI]:
    """`with fake_openai(reply=…) as fake:`: the same as `with FakeOpenAI(reply=…) as fake:`."""
    with FakeOpenAI(**script) as fake:
        yield fake
