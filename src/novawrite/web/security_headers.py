"""Headers every response carries, whoever made it (API, pages, static files, errors).

A pure ASGI wrapper around the whole application, outside Starlette's error
middleware, so a 500 gets them too. It appends two constant headers to the
response's start message and does nothing else: no parsing, no allocation beyond
the new header list. What varies by response stays with the response: JSON says
``Cache-Control: no-store`` (``web.http.JSON``), the polling route its own
``private, no-cache`` (encoded once per task change), pages their CSP (``web.ui``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


#: The scope key under which the server's own ``send`` is kept for event streams (``api_tasks.EventStream``):
#: a stream's body messages skip the send wrappers between here and the route, since every one of
#: them (this one, Starlette's error and exception middleware) acts on the start message alone.
#: A middleware that changes body messages (compression) would not see a stream's body; an event
#: stream must not be compressed anyway.
SERVER_SEND = "novawrite.server_send"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        scope[SERVER_SEND] = send
        await self.app(scope, receive, send_with_headers)
