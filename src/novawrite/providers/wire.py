"""What the network providers share: HTTP failures as ``ProviderError``, Retry-After, usage deltas.

Gemini and OpenAI-compatible servers fail the same way at the HTTP level, and
the engine only cares whether a failure is worth retrying and, if not, what the
author must fix. This module holds that one table, so both providers word their
errors alike. It imports no HTTP client.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

from novawrite.providers.base import ProviderError, Usage


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def parse_duration(value: object) -> float | None:
    """Seconds from a protobuf Duration in JSON form (``"17s"``, ``"1.5s"``)."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None


@dataclass(frozen=True)
class Hints:
    """What to tell the author to check, per provider."""

    service: str  # "Gemini"
    key_setting: str  # "GEMINI_API_KEY"
    model_setting: str  # "NOVAWRITE_GEMINI_MODEL"
    url_setting: str  # "NOVAWRITE_GEMINI_BASE_URL"


def is_transient_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


def error_for_status(
    status: int,
    detail: str,
    *,
    hints: Hints,
    model: str | None,
    retry_after: float | None = None,
    quota: str | None = None,
) -> ProviderError:
    """The ``ProviderError`` for an HTTP error status: 408/429/5xx transient, other 4xx fatal."""
    detail = detail.strip() or "no details"
    service = hints.service
    if status == 429:
        return ProviderError(
            f"{service} rate limit reached (429): {detail}",
            transient=True,
            retry_after=retry_after,
            status=status,
            rate_limited=True,
            quota=quota,
        )
    if is_transient_status(status):
        return ProviderError(
            f"{service} is unavailable ({status}): {detail}", transient=True, retry_after=retry_after, status=status
        )
    if status in (401, 403):
        message = f"{service} refused the API key ({status}): {detail}. Check {hints.key_setting}."
    elif status == 404:
        message = (
            f'{service} does not know the model "{model}" or the address ({status}): {detail}. '
            f"Check {hints.model_setting} and {hints.url_setting}."
        )
    elif status == 400:
        message = f"{service} rejected the request as invalid (400): {detail}"
    else:
        message = f"{service} refused the request ({status}): {detail}"
    return ProviderError(message, transient=False, status=status)


def bad_api_key(status: int, detail: str, *, hints: Hints) -> ProviderError:
    return ProviderError(
        f"{hints.service} rejected the API key ({status}): {detail}. Check {hints.key_setting}.",
        transient=False,
        status=status,
    )


class UsageMeter:
    """Turns usage reports that may be cumulative into deltas whose sum is the call's usage.

    Gemini repeats the running totals on every streamed chunk, and some
    OpenAI-compatible servers do too; others report once at the end. Emitting
    only what grew since the last report is right in every case, and a stream
    cut mid-way still counts what was spent.
    """

    def __init__(self) -> None:
        self._prompt = 0
        self._output = 0

    def report(self, prompt_tokens: int, output_tokens: int) -> Usage:
        delta = Usage(max(0, prompt_tokens - self._prompt), max(0, output_tokens - self._output))
        self._prompt = max(self._prompt, prompt_tokens)
        self._output = max(self._output, output_tokens)
        return delta
