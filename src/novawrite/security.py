"""Password hashes (argon2) and signed, expiring access tokens (JWT, HS256).

A browser session is the same kind of token carried in an HttpOnly cookie; its
``csrf`` claim is the value the readable ``nw_csrf`` cookie holds and that unsafe
cookie-authenticated requests must echo in ``X-CSRF-Token``.

Every token names itself (``jti``, so logout can revoke that one session) and the
account's token generation it was issued under (``gen``: a password change raises
it, which revokes every older token). Whether a token is revoked is the account's
state, checked by ``novawrite.services.users``; this module only signs and verifies.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """argon2id hashing on a small pool of its own; the cost is a setting (tests make it cheap).

    A hash costs tens of milliseconds of CPU and 64 MiB. Run on asyncio's default pool,
    a burst of logins would take every worker (and all the cores) at once; here at most
    ``threads`` hashes run at a time and the rest wait their turn in the pool's queue,
    so the event loop keeps a core for every other request (argon2 releases the GIL).
    """

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, *, threads: int = 1) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        # Verifying against this keeps a login for an unknown user as slow as for a known one.
        self._dummy = self._hasher.hash("not a real password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    async def hash_async(self, password: str) -> str:
        """``hash`` on the pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        """``verify`` on the pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.verify, password_hash, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    csrf: str | None
    #: The token's own id (revoked by logout).
    jti: str = ""
    #: The account's token generation when the token was issued.
    generation: int = 0
    #: Expiry, Unix seconds.
    expires: int = 0


class TokenSigner:
    """Issues and verifies tokens; a token verified once is remembered until it expires.

    Verifying a JWT costs tens of microseconds, as much as the rest of a poll;
    a client polls with the same token every second. Only tokens whose signature
    checked out are remembered, keyed by their exact text, and the expiry is
    checked again on every use. A token without ``jti`` (made before tokens could
    be revoked) is refused: its owner logs in again.
    """

    def __init__(
        self, secret: str, ttl_seconds: int, *, remember: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._clock = clock
        self.ttl_seconds = ttl_seconds
        self._remember = remember
        self._verified: dict[str, TokenClaims] = {}

    def issue(self, user_id: int, *, generation: int = 0, csrf: str | None = None) -> str:
        now = int(self._clock())
        claims: dict[str, object] = {
            "sub": str(user_id),
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": secrets.token_urlsafe(16),
            "gen": generation,
        }
        if csrf is not None:
            claims["csrf"] = csrf
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> TokenClaims | None:
        """The token's claims, or None when it is malformed, tampered with or expired."""
        now = self._clock()
        known = self._verified.get(token)
        if known is not None:
            if now < known.expires:
                return known
            del self._verified[token]
        try:
            # The expiry is checked here, on the same clock as for remembered tokens.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub", "jti"], "verify_exp": False},
            )
            user_id = int(claims["sub"])
            expires = int(claims["exp"])
            jti = claims["jti"]
            generation = claims.get("gen", 0)
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        if now >= expires or not isinstance(jti, str) or type(generation) is not int:
            return None
        csrf = claims.get("csrf")
        verified = TokenClaims(user_id, csrf if isinstance(csrf, str) else None, jti, generation, expires)
        if len(self._verified) >= self._remember:
            self._verified.clear()  # simplest bound; the next uses verify again
        self._verified[token] = verified
        return verified


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def load_or_create_secret(path: Path) -> str:
    """The secret kept at ``path``, made (random, owner-only) the first time."""
    try:
        secret = path.read_text().strip()
        if secret:
            return secret
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Written whole to a file of its own, then linked into place. The link fails when
    # the path exists, so of two processes starting at once the second reads the
    # first's secret, and never an empty file the first has made but not yet written.
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # owner-only (0600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
        os.link(draft, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        os.unlink(draft)
    return secret
