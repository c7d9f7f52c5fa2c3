"""A fake Gemini API (the REST protocol google-genai speaks), scripted by tests.

Routes: ``POST /{version}/models/{model}:generateContent`` and
``POST /{version}/models/{model}:streamGenerateContent?alt=sse``, any version
(``v1``, ``v1beta``, ...), so a test can assert which one the client chose.

It checks what Google checks: the key (``x-goog-api-key`` header or ``?key=``;
missing is 403, wrong is 400 ``API_KEY_INVALID``, as the real API answers) when
``api_key`` is set, and the model name when ``models`` is set (unknown is 404).
Streamed chunks carry cumulative ``usageMetadata``, as Gemini's do, and only the
last one has a ``finishReason``. With ``faults`` set (``script.Faults``) it
fails a seeded fraction of the model calls: 429 with Retry-After, 503, cut streams.

Run alone: ``python -m tests.fakes.fake_gemini --port 8601 [--api-key K]``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Collection
from typing import Any

from tests.fakes.http_server import Chunked, Reply, Request, Response, Silent
from tests.fakes.script import Fail, Hang, ScriptedServer, Stream, Text

_ROUTE = re.compile(
    r"^/(?P<version>v\d+\w*)/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    if details:
        error["details"] = details
    return json.dumps({"error": error}).encode()


def quota_error_body(retry_delay: str | None = "90s", *, per_day: bool = True) -> bytes:
    """A 429 as Gemini sends it when a quota is used up: ``RetryInfo`` (when ``retry_delay``) and a
    ``QuotaFailure`` naming the per-day quota (when ``per_day``) or the per-minute one."""
    quota_id = (
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
        if per_day
        else ("GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
    )
    details: list[dict[str, Any]] = []
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    details.append(
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": "gemini-flash"},
                    "quotaValue": "250",
                }
            ],
        }
    )
    return error_body(429, "You exceeded your current quota, please check your plan and billing details.", details)


def _chunk(model: str, text: str | None, usage: dict[str, int], finish: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"parts": [{"text": text}] if text is not None else [], "role": "model"},
        "index": 0,
    }
    if finish:
        candidate["finishReason"] = "STOP"
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "fake-response"}


def _usage(prompt: int, output: int) -> dict[str, int]:
    return {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output}


class FakeGemini(ScriptedServer):
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        models: Collection[str] | None = None,
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.models = set(models) if models is not None else None

    def respond_model(self, request: Request) -> Response:
        match = _ROUTE.match(request.path)
        if match is None or request.method != "POST":
            return Reply(404, error_body(404, f"Method not found: {request.method} {request.path}"))
        if self.api_key is not None:
            sent = request.headers.get("x-goog-api-key") or request.query.get("key")
            if not sent:
                return Reply(
                    403,
                    error_body(
                        403,
                        "Method doesn't allow unregistered callers (callers without "
                        "established identity). Please use API Key or other form of API "
                        "consumer identity to call this API.",
                    ),
                )
            if sent != self.api_key:
                return Reply(
                    400,
                    error_body(
                        400,
                        "API key not valid. Please pass a valid API key.",
                        [
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID",
                                "domain": "googleapis.com",
                            }
                        ],
                    ),
                )
        model, version = match["model"], match["version"]
        if self.models is not None and model not in self.models:
            return Reply(
                404,
                error_body(
                    404,
                    f"models/{model} is not found for API version {version}, or is not "
                    "supported for generateContent. Call ListModels to see the list of "
                    "available models and their supported methods.",
                ),
            )
        streaming = match["method"] == "streamGenerateContent"
        step = self.step_for(request, streaming=streaming)
        if streaming:
            return self._stream(model, step)
        return self._whole(model, step)

    def _whole(self, model: str, step: Text | Stream | Fail | Hang) -> Response:
        if isinstance(step, Stream):
            text = "".join(p.text for p in step.normalized())
            step = Text(text, step.prompt_tokens, step.total_output_tokens)
        if isinstance(step, Text):
            body = _chunk(model, step.text, _usage(step.prompt_tokens, step.output_tokens), finish=True)
            return Reply(200, json.dumps(body).encode())
        return self._failure(step)

    def _stream(self, model: str, step: Text | Stream | Fail | Hang) -> Response:
        if isinstance(step, Text):
            step = Stream([step.text], prompt_tokens=step.prompt_tokens, output_tokens=step.output_tokens)
        if not isinstance(step, Stream):
            return self._failure(step)
        pieces = step.normalized()
        total = step.total_output_tokens
        sent: list[tuple[float, bytes]] = []
        for index, piece in enumerate(pieces):
            if step.cut_after is not None and index >= step.cut_after:
                break
            if step.hang_after is not None and index >= step.hang_after:
                break
            last = index == len(pieces) - 1
            so_far = total if last else total * (index + 1) // len(pieces)
            body = _chunk(model, piece.text, _usage(step.prompt_tokens, so_far), finish=last and not step.unfinished)
            sent.append((piece.delay, b"data: " + json.dumps(body).encode() + b"\r\n\r\n"))
        then = "cut" if step.cut_after is not None else "hang" if step.hang_after is not None else "end"
        return Chunked(sent, then=then)

    @staticmethod
    def _failure(step: Fail | Hang) -> Response:
        if isinstance(step, Hang):
            return Silent()
        if step.body is not None:
            return Reply(step.status, step.body, step.headers)
        details = None
        if step.retry_delay is not None:
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": step.retry_delay}]
        message = step.message or f"Fake failure {step.status}"
        return Reply(step.status, error_body(step.status, message, details), step.headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key")
    parser.add_argument("--model", action="append", help="accept only these model names")
    args = parser.parse_args()
    FakeGemini(args.host, args.port, api_key=args.api_key, models=args.model).serve_forever()


if __name__ == "__main__":
    main()
