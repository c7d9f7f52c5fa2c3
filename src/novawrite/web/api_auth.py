"""/api/auth: register, login (token + browser session cookies), logout, me."""

from __future__ import annotations

from starlette.responses import Response

from novawrite.errors import Unauthorized
from novawrite.security import new_csrf_token
from novawrite.web.auth import CSRF_COOKIE, SESSION_COOKIE
from novawrite.web.http import JSON
from novawrite.web.routing import ApiRouter, Call
from novawrite.web.schemas import LoginIn, RegisterIn, TokenOut, UserOut

router = ApiRouter("auth")


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
    errors=(401,),
)
async def login(call: Call) -> Response:
    services = call.services
    user_id = await services.users.check_credentials(call.body.username, call.body.password)
    if user_id is None:
        raise Unauthorized("Wrong username or password")
    ttl = services.signer.ttl_seconds
    csrf = new_csrf_token()
    response = JSON({"access_token": services.signer.issue(user_id), "token_type": "bearer", "expires_in": ttl})
    secure = services.settings.cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        services.signer.issue(user_id, csrf=csrf),
        max_age=ttl,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl, httponly=False, samesite="lax", secure=secure, path="/")
    return response


@router.route("POST", "/api/auth/logout", summary="Log out: clear the session cookies", status=204, auth=False)
async def logout(call: Call) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="lax")
    return response


@router.route("GET", "/api/auth/me", summary="The logged-in user", response=UserOut)
async def me(call: Call) -> Response:
    return JSON({"id": call.user.id, "username": call.user.username})
