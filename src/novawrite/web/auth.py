"""Who is calling: a Bearer token, or the browser's session cookie plus CSRF header."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from novawrite.errors import CsrfFailed, Unauthorized

SESSION_COOKIE = "nw_session"
CSRF_COOKIE = "nw_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str

    @classmethod
    def anonymous(cls) -> CurrentUser:
        return cls(0, "")


async def authenticate(request: Request) -> CurrentUser:
    services = request.app.state.novawrite
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        claims = services.signer.verify(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None:
            raise Unauthorized("Invalid or expired token")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthorized()
        claims = services.signer.verify(cookie)
        if claims is None or claims.csrf is None:
            raise Unauthorized("Invalid or expired session")
        if request.method in UNSAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), claims.csrf.encode()):
                raise CsrfFailed()
    username = await services.users.username(claims.user_id)
    if username is None:
        raise Unauthorized("Unknown user")
    return CurrentUser(claims.user_id, username)
