"""A fake OpenAI-compatible chat server (``POST {prefix}/chat/completions``), scripted by tests.

``prefix`` is ``/v1`` like OpenAI, Ollama, vLLM and llama.cpp; a test can move it
(``/api/v1``) to check how a client joins base URLs. With ``api_key`` set it
wants ``Authorization: Bearer <key>`` (else 401); with ``models`` set an unknown
model is 404. Streams follow OpenAI's shape: content deltas, a chunk with the
``finish_reason``, a usage chunk with no choices when the request asked for
``stream_options.include_usage``, then ``data: [DONE]``.

Run alone: ``python -m tests.fakes.fake_openai --port 8602 [--api-key K]``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Collection
from typing import Any

from tests.fakes.http_server import Chunked, Reply, Request, Response, Silent
from tests.fakes.script import Fail, Hang, ScriptedServer, Stream, Text

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str, code: str | None = None) -> bytes:
    error = {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "param": None, "code": code}
    return json.dumps({"error": error}).encode()


def _usage(prompt: int, output: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}


class FakeOpenAI(ScriptedServer):
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        prefix: str = "/v1",
        api_key: str | None = None,
        models: Collection[str] | None = None,
    ) -> None:
        super().__init__(host, port)
        self.prefix = prefix.rstrip("/")
        self.api_key = api_key
        self.models = set(models) if models is not None else None

    @property
    def api_base(self) -> str:
        return self.base_url + self.prefix

    def respond_model(self, request: Request) -> Response:
        if request.path != f"{self.prefix}/chat/completions" or request.method != "POST":
            return Reply(404, error_body(404, f"Unknown route {request.method} {request.path}"))
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, error_body(401, "Incorrect API key provided.", "invalid_api_key"))
        body = request.json() or {}
        model = str(body.get("model", ""))
        if self.models is not None and model not in self.models:
            return Reply(404, error_body(404, f"The model `{model}` does not exist.", "model_not_found"))
        step = self.next_step()
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(model, step, include_usage)
        return self._whole(model, step)

    def _whole(self, model: str, step: Text | Stream | Fail | Hang) -> Response:
        if isinstance(step, Stream):
            step = Text("".join(p.text for p in step.normalized()), step.prompt_tokens, step.total_output_tokens)
        if isinstance(step, Text):
            body = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": step.text}, "finish_reason": "stop"}
                ],
                "usage": _usage(step.prompt_tokens, step.output_tokens),
            }
            return Reply(200, json.dumps(body).encode())
        return self._failure(step)

    def _stream(self, model: str, step: Text | Stream | Fail | Hang, include_usage: bool) -> Response:
        if isinstance(step, Text):
            step = Stream([step.text], prompt_tokens=step.prompt_tokens, output_tokens=step.output_tokens)
        if not isinstance(step, Stream):
            return self._failure(step)

        def event(data: dict[str, Any] | str, delay: float = 0.0) -> tuple[float, bytes]:
            text = data if isinstance(data, str) else json.dumps(data)
            return delay, f"data: {text}\n\n".encode()

        def chunk(delta: dict[str, str], finish: str | None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        sent: list[tuple[float, bytes]] = []
        for index, piece in enumerate(step.normalized()):
            if step.cut_after is not None and index >= step.cut_after:
                break
            if step.hang_after is not None and index >= step.hang_after:
                break
            delta = {"role": "assistant", "content": piece.text} if index == 0 else {"content": piece.text}
            sent.append(event(chunk(delta, None), piece.delay))
        if step.cut_after is not None:
            return Chunked(sent, then="cut")
        if step.hang_after is not None:
            return Chunked(sent, then="hang")
        if not step.unfinished:
            sent.append(event(chunk({}, "stop")))
            if include_usage:
                usage_chunk = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [],
                    "usage": _usage(step.prompt_tokens, step.total_output_tokens),
                }
                sent.append(event(usage_chunk))
            sent.append(event("[DONE]"))
        return Chunked(sent)

    @staticmethod
    def _failure(step: Fail | Hang) -> Response:
        if isinstance(step, Hang):
            return Silent()
        if step.body is not None:
            return Reply(step.status, step.body, step.headers)
        return Reply(step.status, error_body(step.status, step.message or f"Fake failure {step.status}"), step.headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--prefix", default="/v1")
    parser.add_argument("--api-key")
    parser.add_argument("--model", action="append", help="accept only these model names")
    args = parser.parse_args()
    FakeOpenAI(args.host, args.port, prefix=args.prefix, api_key=args.api_key, models=args.model).serve_forever()


if __name__ == "__main__":
    main()
