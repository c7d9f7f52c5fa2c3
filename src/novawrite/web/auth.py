"""Who is calling: a Bearer token, or the browser's session cookie plus CSRF header.

A token must also still be valid for its account: not issued before the last
password change, not a session ended by logout (``Account.accepts``; answered from
the process's copy of the account, so it costs no query).

Routes without credentials that change something (register, login, logout) cannot
be guarded by the CSRF token, so they are guarded by where the request comes from:
``check_same_origin`` refuses a browser request sent by another site.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from novawrite.errors import CsrfFailed, Unauthorized
from novawrite.security import TokenClaims

SESSION_COOKIE = "nw_session"
CSRF_COOKIE = "nw_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    #: The token the request was authenticated with (None for anonymous calls).
    claims: TokenClaims | None = None

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
        claims = session_claims(request)
        if claims is None:
            raise (
                Unauthorized() if SESSION_COOKIE not in request.cookies else Unauthorized("Invalid or expired session")
            )
        if request.method in UNSAFE_METHODS:
            check_csrf_header(request, claims)
    users = services.users
    account = await users.account(claims.user_id)
    if account is not None and claims.generation > account.generation:
        account = await users.account(claims.user_id, fresh=True)  # changed in another process just now
    if account is None or not account.accepts(claims):
        raise Unauthorized("Invalid or expired token")
    return CurrentUser(claims.user_id, account.username, claims)


def session_claims(request: Request) -> TokenClaims | None:
    """The session cookie's claims when it is a well-signed, unexpired session token."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    claims: TokenClaims | None = request.app.state.novawrite.signer.verify(cookie)
    return claims if claims is not None and claims.csrf is not None else None


def check_csrf_header(request: Request, claims: TokenClaims) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if claims.csrf is None or not hmac.compare_digest(sent.encode(), claims.csrf.encode()):
        raise CsrfFailed()


def public_request(request: Request) -> CurrentUser:
    """An unauthenticated route: an unsafe request must not come from another site."""
    if request.method in UNSAFE_METHODS:
        check_same_origin(request)
    return CurrentUser.anonymous()


def check_same_origin(request: Request) -> None:
    """403 for a browser request another site made: ``Sec-Fetch-Site: cross-site``, or an
    ``Origin`` that is not this request's own scheme, host and port.

    "Own" is the scheme the request arrived with (behind a proxy: its X-Forwarded-Proto,
    which uvicorn applies for a trusted proxy) and the ``Host`` header (what the browser
    used; a proxy passes it on). A request without ``Origin`` (not a browser, or a browser
    that sends none on same-origin requests) passes; ``Origin: null`` does not.
    """
    headers = request.headers
    if headers.get("sec-fetch-site", "").strip().lower() == "cross-site":
        raise CsrfFailed("Cross-site request refused")
    origin = headers.get("origin")
    if origin is None:
        return
    sent = _origin_key(origin)
    own = _origin_key(f"{request.scope.get('scheme', 'http')}://{headers.get('host', '')}")
    if sent is None or sent != own:
        raise CsrfFailed("Request from another origin refused")


def _origin_key(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not host or port is None or parts.path not in ("", "/"):
        return None
    return scheme, host, port
