"""/api/auth: register, login (token + browser session cookies), logout, password, me.

Register, login and logout take no credentials, so ``routing`` refuses them from
another origin (``auth.public_request``). Logout revokes the session cookie's token
(which must come with its CSRF header); a bearer token is left to expire. Login
and the current-password check of a password change are throttled together
(``LoginThrottle``): their failures count for the username and the client address.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from novawrite.errors import Unauthorized
from novawrite.security import new_csrf_token
from novawrite.web.auth import CSRF_COOKIE, SESSION_COOKIE, check_csrf_header, session_claims
from novawrite.web.http import JSON
from novawrite.web.routing import ApiRouter, Call
from novawrite.web.schemas import LoginIn, Password, RegisterIn, Strict, TokenOut, UserOut

router = ApiRouter("auth")


class PasswordChangeIn(Strict):
    current_password: Annotated[str, Field(max_length=256)]
    new_password: Password


def client_address(request: Request) -> str:
    """The client's address (behind a trusted proxy, uvicorn takes it from X-Forwarded-For)."""
    return request.client.host if request.client is not None else ""


def set_session_cookies(response: Response, services: object, user_id: int, generation: int) -> None:
    signer = services.signer  # type: ignore[attr-defined]
    secure = services.settings.cookie_secure  # type: ignore[attr-defined]
    ttl = signer.ttl_seconds
    csrf = new_csrf_token()
    session = signer.issue(user_id, generation=generation, csrf=csrf)
    response.set_cookie(SESSION_COOKIE, session, max_age=ttl, httponly=True, samesite="lax", secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl, httponly=False, samesite="lax", secure=secure, path="/")


@router.route(
    "POST",
    "/api/auth/register",
    summary="Create an account",
    body=RegisterIn,
    response=UserOut,
    status=201,
    auth=False,
    errors=(409,),
)
async def register(call: Call) -> Response:
    user_id, username = await call.services.users.register(call.body.username, call.body.password)
    return JSON({"id": user_id, "username": username}, status_code=201)


@router.route(
    "POST",
    "/api/auth/login",
    summary="Log in: a bearer token, and the browser's session cookies",
    body=LoginIn,
    response=TokenOut,
    auth=False,
    errors=(401, 429),
)
async def login(call: Call) -> Response:
    services = call.services
    username, address = call.body.username, client_address(call.request)
    await services.login_throttle.check(username, address)
    found = await services.users.check_credentials(username, call.body.password)
    if found is None:
        await services.login_throttle.failed(username, address)
        raise Unauthorized("Wrong username or password")
    await services.login_throttle.succeeded(username)
    user_id, generation = found
    signer = services.signer
    token = signer.issue(user_id, generation=generation)
    response = JSON({"access_token": token, "token_type": "bearer", "expires_in": signer.ttl_seconds})
    set_session_cookies(response, services, user_id, generation)
    return response


@router.route(
    "POST",
    "/api/auth/logout",
    summary="Log out: end the cookie's session on the server and clear the session cookies",
    status=204,
    auth=False,
)
async def logout(call: Call) -> Response:
    claims = session_claims(call.request)
    if claims is not None:
        check_csrf_header(call.request, claims)
        await call.services.users.revoke(claims)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="lax")
    return response


@router.route(
    "POST",
    "/api/auth/password",
    summary="Change the password: every token issued before is revoked; fresh session cookies",
    body=PasswordChangeIn,
    status=204,
    errors=(429,),
)
async def change_password(call: Call) -> Response:
    services = call.services
    username, address = call.user.username, client_address(call.request)
    await services.login_throttle.check(username, address)
    generation = await services.users.change_password(call.user.id, call.body.current_password, call.body.new_password)
    if generation is None:
        await services.login_throttle.failed(username, address)
        raise Unauthorized("The current password is wrong")
    await services.login_throttle.succeeded(username)
    response = Response(status_code=204)
    set_session_cookies(response, services, call.user.id, generation)
    return response


@router.route("GET", "/api/auth/me", summary="The logged-in user", response=UserOut)
async def me(call: Call) -> Response:
    return JSON({"id": call.user.id, "username": call.user.username})
