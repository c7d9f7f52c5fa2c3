"""Any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp, OpenAI itself) over plain httpx.

One endpoint, ``/chat/completions``: JSON answers ask for
``response_format: json_schema`` (``strict: false``, which local servers accept
more widely), text streams use SSE with ``stream_options.include_usage``.

The base URL may be given with or without the API version, as each server's
docs spell it: when its path already holds a version segment
(``http://host:8000/v1``, ``https://openrouter.ai/api/v1``,
``.../v1beta/openai``) only ``/chat/completions`` is appended; otherwise
(``http://localhost:11434``) ``/v1/chat/completions`` is. A URL that already ends
in ``/chat/completions`` is used as is.

Timeouts: the whole call for JSON; for streams httpx's read timeout, i.e. the
silence allowed between two reads, never the stream's total length. A stream
that ends without a finish reason or ``[DONE]`` was cut, and is a transient
error. Cancelling the task that iterates closes the response (and its
connection) as the ``CancelledError`` unwinds the ``async with`` below.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from novawrite.providers.base import Completion, Prompt, ProviderError, Usage
from novawrite.providers.wire import Hints, UsageMeter, error_for_status, parse_retry_after

HINTS = Hints(
    service="OpenAI-compatible server",
    key_setting="NOVAWRITE_OPENAI_API_KEY",
    model_setting="NOVAWRITE_OPENAI_MODEL",
    url_setting="NOVAWRITE_OPENAI_BASE_URL",
)

_VERSION_SEGMENT = re.compile(r"/v\d+[a-z0-9]*(/|$)")


def chat_completions_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if _VERSION_SEGMENT.search(urlsplit(url).path):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def _schema_name(schema: type[BaseModel]) -> str:
    # OpenAI allows [a-zA-Z0-9_-]{1,64} here.
    return re.sub(r"[^a-zA-Z0-9_-]", "_", schema.__name__)[:64] or "result"


class OpenAICompatProvider:
    name = "openai"
    is_demo = False

    def __init__(
        self,
        *,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self.url = chat_completions_url(base_url)
        self._timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout), transport=transport)

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Completion:
        body = self._body(prompt)
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": _schema_name(schema), "schema": schema.model_json_schema(), "strict": False},
        }
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.post(self.url, json=body)
        except TimeoutError:
            raise ProviderError(
                f"The {HINTS.service} did not answer within {self._timeout:g} s", transient=True
            ) from None
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        if response.status_code != 200:
            raise self._status_error(response)
        try:
            answer = response.json()
            message = answer["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ProviderError(
                f"The {HINTS.service} sent an unreadable answer: {response.text[:200]!r}", transient=True
            ) from None
        return Completion(str(message.get("content") or ""), UsageMeter().report(*_usage_totals(answer)))

    async def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        body = self._body(prompt)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        meter = UsageMeter()
        finished = False
        try:
            async with self._http.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self._status_error(response)
                async for data in _sse_data(response):
                    if data.strip() == "[DONE]":
                        finished = True
                        break
                    event = _event(data)
                    text = ""
                    for choice in event.get("choices") or []:
                        text += str((choice.get("delta") or {}).get("content") or "")
                        finished = finished or choice.get("finish_reason") is not None
                    usage = meter.report(*_usage_totals(event))
                    if text or usage != Usage():
                        yield Completion(text, usage)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        if not finished:
            raise ProviderError(f"The {HINTS.service}'s stream ended before the model finished", transient=True)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _body(self, prompt: Prompt) -> dict[str, Any]:
        messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
        messages.append({"role": "user", "content": prompt.user})
        body: dict[str, Any] = {"messages": messages}
        if self.model:  # llama.cpp and vLLM serve one model and accept none named
            body["model"] = self.model
        return body

    def _status_error(self, response: httpx.Response) -> ProviderError:
        detail = response.text[:500]
        try:
            error = response.json().get("error")
            if isinstance(error, dict):
                detail = str(error.get("message") or detail)
            elif isinstance(error, str):
                detail = error
        except (ValueError, AttributeError):
            pass
        retry_after = None
        if (ms := response.headers.get("retry-after-ms")) is not None:
            seconds = parse_retry_after(ms)
            retry_after = seconds / 1000 if seconds is not None else None
        if retry_after is None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        return error_for_status(response.status_code, detail, hints=HINTS, model=self.model, retry_after=retry_after)


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event (multi-line data joined by newlines)."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
        elif line.startswith("data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        yield "\n".join(lines)


def _event(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        raise ProviderError(
            f"The {HINTS.service} sent an unreadable stream event: {data[:200]!r}", transient=True
        ) from None
    if not isinstance(event, dict):
        raise ProviderError(f"The {HINTS.service} sent an unexpected stream event: {data[:200]!r}", transient=True)
    if "error" in event:
        # Servers report failures that happen after the 200 inside the stream.
        error = event["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ProviderError(f"The {HINTS.service} failed mid-stream: {message}", transient=True)
    return event


def _usage_totals(body: dict[str, Any]) -> tuple[int, int]:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _transport_error(exc: httpx.HTTPError) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(f"The {HINTS.service} timed out: {exc!r}", transient=True)
    return ProviderError(f"Connection to the {HINTS.service} failed or was cut: {exc!r}", transient=True)
