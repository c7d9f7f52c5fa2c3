"""uvicorn's httptools protocol with a bound on a request head's size and time.

uvicorn bounds a request head only with h11 (``h11_max_incomplete_event_size``);
with httptools, the fast parser ``novawrite serve`` uses, a client may send headers
without end, or trickle them, and a connection that sends nothing is never closed.
This subclass answers 431 (in API.md's error shape) once a head passes
``NOVAWRITE_MAX_HEADER_BYTES``, and 408 when a head takes longer than
``NOVAWRITE_HEADER_TIMEOUT_SECONDS`` to arrive (timed from the connection's opening,
or from the first byte of a later request on a kept-alive connection).

The size is counted without work per header: while a head is incomplete, the
bytes received so far; when it completes, the head is measured exactly only if the
bytes that carried it exceed the bound (a head and a large body can share a read).

The limits are read from the environment once per process (like the rest of the
settings), so the class can be named as ``http=`` and survive uvicorn's ``--reload``
and worker processes, which import it anew.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from novawrite.settings import Settings
from novawrite.web.http import dumps

log = logging.getLogger("novawrite.web")


class _HeadTooLarge(Exception):
    pass


@cache
def _limits() -> tuple[int, float]:
    settings = Settings.from_env()
    return settings.max_header_bytes, settings.header_timeout_seconds


def _error_response(status: int, code: str, message: str) -> bytes:
    body = dumps({"error": {"code": code, "message": message}})
    head = (
        b"content-type: application/json\r\n"
        b"x-content-type-options: nosniff\r\n"
        b"connection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return STATUS_LINE[status] + head + body


TOO_LARGE = _error_response(431, "request_header_fields_too_large", "Request headers are too large")
TOO_SLOW = _error_response(408, "request_timeout", "Request headers took too long")


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes, self.header_timeout = _limits()
        self._in_head = True
        self._pending = 0  # bytes of earlier reads that went into the current head
        self._chunk = 0  # bytes of the read being parsed
        self._heads = 0  # heads completed on this connection
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, but a head over the bound is a 431 instead of a 400.
        self._unset_keepalive_if_required()
        in_head = self._in_head
        if in_head and self._head_timer is None:
            self._start_head_timer()
        self._chunk = len(data)
        heads = self._heads
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(TOO_LARGE, "request head over %d bytes")
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if in_head and self._in_head and self._heads == heads:  # the whole read went into one unfinished head
            self._pending += len(data)
            if self._pending > self.max_header_bytes:
                self._refuse(TOO_LARGE, "request head over %d bytes")

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        if self._pending + self._chunk > self.max_header_bytes and self._head_size() > self.max_header_bytes:
            raise _HeadTooLarge()
        self._in_head = False
        self._pending = 0
        self._heads += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what comes next is the next request's head

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(TOO_SLOW, "request head not received within %s s", self.header_timeout)

    def _refuse(self, response: bytes, why: str, limit: float | None = None) -> None:
        if self.transport.is_closing():
            return
        log.info("refused a connection from %s: " + why, self.client, limit or self.max_header_bytes)
        self.transport.write(response)
        self.transport.close()
