"""Gemini through google-genai's async client.

How the SDK (3.x) is held, and why:

- **Endpoint.** The SDK joins ``base_url + api_version + models/{model}:...``
  and its 3.x default version is ``v1``. We pin ``v1beta``, the surface where
  structured output (``responseJsonSchema``) and streaming have long lived and
  which AI Studio's own REST examples use. A base URL whose path ends in a
  version (``https://proxy.example/gemini/v1``) sets the version instead, so a
  proxy or fake can be given either way. An API key is always sent
  (``x-goog-api-key``): the SDK refuses to start without one, even with a base URL.
- **Transport.** We hand the SDK our own ``httpx2.AsyncClient`` (3.x builds on
  httpx2, not httpx). Without it the SDK silently switches to aiohttp whenever
  aiohttp is importable, with other errors and timeouts.
- **No SDK retries** (``attempts=1``): its retry ignores Retry-After, and the
  engine retries every provider the same way.
- **Timeouts** are asyncio's: the whole call for JSON, and for a stream the
  silence between two chunks, never the stream's total length.
- **Cancel.** The SDK's stream is a chain of async generators; closing the
  outermost one (``break``/``aclose``) leaves the inner one holding the HTTP
  response open, but a ``CancelledError`` delivered while it awaits the network
  unwinds every level and closes the response. So a stream is read by a pump
  task that is always awaiting the next chunk (into an unbounded queue) and
  ``stream_text`` cancels it whenever the reader stops: cancelled, closed early,
  failed or done.
- **Output.** JSON answers are returned as raw text, never ``.parsed`` (which
  is silently None on invalid JSON); the generators validate and repair.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel

from novawrite.providers.base import Completion, Prompt, ProviderError, Usage
from novawrite.providers.wire import Hints, UsageMeter, bad_api_key, error_for_status, parse_duration, parse_retry_after

DEFAULT_API_VERSION = "v1beta"
#: How long closing a stream may take before we stop waiting for it (it never should).
_STOP_BUDGET_SECONDS = 5.0

logger = logging.getLogger(__name__)

HINTS = Hints(
    service="Gemini",
    key_setting="GEMINI_API_KEY",
    model_setting="NOVAWRITE_GEMINI_MODEL",
    url_setting="NOVAWRITE_GEMINI_BASE_URL",
)

_VERSION_SEGMENT = re.compile(r"v\d+[a-z0-9]*")
_END = object()


def split_base_url(base_url: str | None) -> tuple[str | None, str]:
    """``(base URL without a trailing API version, API version)``; None means Google's endpoint."""
    if not base_url:
        return None, DEFAULT_API_VERSION
    parts = urlsplit(base_url.strip())
    segments = parts.path.rstrip("/").split("/")
    if segments and _VERSION_SEGMENT.fullmatch(segments[-1]):
        path = "/".join(segments[:-1]) + "/"
        return urlunsplit(parts._replace(path=path)), segments[-1]
    return base_url.strip(), DEFAULT_API_VERSION


class GeminiProvider:
    name = "gemini"
    is_demo = False

    def __init__(self, *, api_key: str, model: str, base_url: str | None = None, timeout: float = 120.0) -> None:
        if not api_key:
            raise ValueError("The Gemini provider needs an API key (GEMINI_API_KEY)")
        self.model = model
        self._timeout = timeout
        base, version = split_base_url(base_url)
        self._http = httpx2.AsyncClient()
        self._client = genai.Client(
            vertexai=False,
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base,
                api_version=version,
                retry_options=types.HttpRetryOptions(attempts=1),
                httpx_async_client=self._http,
            ),
        )

    # --- calls -------------------------------------------------------------------------

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Completion:
        config = self._config(
            prompt,
            response_mime_type="application/json",
            response_json_schema=schema.model_json_schema(),
        )
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.aio.models.generate_content(
                    model=self.model, contents=prompt.user, config=config
                )
        except TimeoutError:
            raise ProviderError(f"Gemini did not answer within {self._timeout:g} s", transient=True) from None
        except Exception as exc:
            raise self._error(exc) from exc
        _raise_if_blocked(response)
        usage = UsageMeter().report(*_usage_totals(response))
        return Completion(_text_of(response), usage)

    async def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(prompt, queue), name=f"gemini stream {self.model}")
        meter = UsageMeter()
        finished = False
        try:
            while True:
                try:
                    async with asyncio.timeout(self._timeout):
                        item = await queue.get()
                except TimeoutError:
                    raise ProviderError(
                        f"Gemini's stream went silent for {self._timeout:g} s", transient=True
                    ) from None
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise self._error(item) from item
                _raise_if_blocked(item)
                finished = finished or _finish_reason(item) is not None
                piece = Completion(_text_of(item), meter.report(*_usage_totals(item)))
                if piece.text or piece.usage != Usage():
                    yield piece
            if not finished:
                raise ProviderError("Gemini's stream ended before the model finished", transient=True)
        finally:
            await _stop(pump)

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()
        await self._http.aclose()

    # --- helpers -----------------------------------------------------------------------

    async def _pump(self, prompt: Prompt, queue: asyncio.Queue[Any]) -> None:
        """Read the SDK stream into ``queue``; always awaiting the network, so a cancel closes it."""
        try:
            stream = await self._client.aio.models.generate_content_stream(
                model=self.model, contents=prompt.user, config=self._config(prompt)
            )
            async for chunk in stream:
                queue.put_nowait(chunk)
        except Exception as exc:  # handed to the reader, which maps it
            queue.put_nowait(exc)
        else:
            queue.put_nowait(_END)

    def _config(self, prompt: Prompt, **extra: Any) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            system_instruction=prompt.system or None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            **extra,
        )

    def _error(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, genai_errors.APIError):
            return _api_error(exc, self.model)
        if isinstance(exc, httpx2.TimeoutException):
            return ProviderError(f"Gemini timed out: {exc!r}", transient=True)
        if isinstance(exc, httpx2.TransportError):
            return ProviderError(f"The connection to Gemini failed or was cut: {exc!r}", transient=True)
        if isinstance(exc, genai_errors.UnknownApiResponseError):
            return ProviderError(f"Gemini sent an unreadable response: {exc}", transient=True)
        if isinstance(exc, Exception):
            # Anything else is a bug on our side or in the SDK: surface it, unretried.
            return ProviderError(f"Gemini call failed: {exc!r}", transient=False)
        raise exc


async def _stop(pump: asyncio.Task[None]) -> None:
    if not pump.done():
        pump.cancel()
    # asyncio.wait neither raises the pump's own cancellation nor swallows ours.
    await asyncio.wait({pump}, timeout=_STOP_BUDGET_SECONDS)
    if not pump.done():
        logger.warning("Gemini stream did not close within %g s", _STOP_BUDGET_SECONDS)
        return
    if not pump.cancelled():
        with contextlib.suppress(BaseException):
            pump.result()


def _api_error(exc: genai_errors.APIError, model: str) -> ProviderError:
    status = int(exc.code or 0)
    detail = exc.message or str(exc.status or "")
    error = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else {}
    details = error.get("details") if isinstance(error, dict) else None
    details = details if isinstance(details, list) else []
    if status in (400, 401, 403) and any(
        isinstance(d, dict) and str(d.get("reason", "")).startswith("API_KEY_") for d in details
    ):
        return bad_api_key(status, detail, hints=HINTS)
    retry_after = None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        retry_after = parse_retry_after(headers.get("retry-after"))
    if retry_after is None:
        for item in details:
            if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
                retry_after = parse_duration(item.get("retryDelay"))
    quota = "per_day" if any(_names_per_day_quota(item) for item in details) else None
    return error_for_status(status, detail, hints=HINTS, model=model, retry_after=retry_after, quota=quota)


def _names_per_day_quota(detail: object) -> bool:
    """A ``google.rpc.QuotaFailure`` detail with a violation whose ``quotaId`` is a per-day quota."""
    if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith("google.rpc.QuotaFailure"):
        return False
    violations = detail.get("violations")
    return isinstance(violations, list) and any(
        isinstance(v, dict) and "PerDay" in str(v.get("quotaId", "")) for v in violations
    )


def _text_of(response: types.GenerateContentResponse) -> str:
    # Not ``response.text``: it warns on non-text parts; thought summaries are not the answer.
    if not response.candidates:
        return ""
    content = response.candidates[0].content
    if content is None or not content.parts:
        return ""
    return "".join(part.text for part in content.parts if part.text and not part.thought)


def _finish_reason(response: types.GenerateContentResponse) -> object | None:
    if not response.candidates:
        return None
    return response.candidates[0].finish_reason


def _usage_totals(response: types.GenerateContentResponse) -> tuple[int, int]:
    """Running totals (prompt, output); thinking tokens are billed as output."""
    meta = response.usage_metadata
    if meta is None:
        return 0, 0
    output = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return meta.prompt_token_count or 0, output


def _raise_if_blocked(response: types.GenerateContentResponse) -> None:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = getattr(feedback.block_reason, "value", feedback.block_reason)
        raise ProviderError(
            f"Gemini refused the prompt ({reason}); change the novel's text or instructions", transient=False
        )
