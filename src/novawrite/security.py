"""Password hashes (argon2) and signed, expiring access tokens (JWT, HS256).

A browser session is the same kind of token carried in an HttpOnly cookie; its
``csrf`` claim is the value the readable ``nw_csrf`` cookie holds and that unsafe
cookie-authenticated requests must echo in ``X-CSRF-Token``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """argon2id hashing; the cost is a setting (tests make it cheap)."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verifying against this keeps a login for an unknown user as slow as for a known one.
        self._dummy = self._hasher.hash("not a real password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    csrf: str | None


class TokenSigner:
    """Issues and verifies tokens; a token verified once is remembered until it expires.

    Verifying a JWT costs tens of microseconds, as much as the rest of a poll;
    a client polls with the same token every second. Only tokens whose signature
    checked out are remembered, keyed by their exact text, and the expiry is
    checked again on every use.
    """

    def __init__(
        self, secret: str, ttl_seconds: int, *, remember: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._clock = clock
        self.ttl_seconds = ttl_seconds
        self._remember = remember
        self._verified: dict[str, tuple[TokenClaims, int]] = {}

    def issue(self, user_id: int, *, csrf: str | None = None) -> str:
        now = int(self._clock())
        claims: dict[str, object] = {"sub": str(user_id), "iat": now, "exp": now + self.ttl_seconds}
        if csrf is not None:
            claims["csrf"] = csrf
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> TokenClaims | None:
        """The token's claims, or None when it is malformed, tampered with or expired."""
        now = self._clock()
        known = self._verified.get(token)
        if known is not None:
            if now < known[1]:
                return known[0]
            del self._verified[token]
        try:
            # The expiry is checked here, on the same clock as for remembered tokens.
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub"], "verify_exp": False}
            )
            user_id = int(claims["sub"])
            expires = int(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        if now >= expires:
            return None
        csrf = claims.get("csrf")
        verified = TokenClaims(user_id, csrf if isinstance(csrf, str) else None)
        if len(self._verified) >= self._remember:
            self._verified.clear()  # simplest bound; the next uses verify again
        self._verified[token] = (verified, expires)
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
    # O_EXCL: when two processes start at once, the second reads the first's secret.
    try:
        with open(path, "x") as handle:
            handle.write(secret)
        path.chmod(0o600)
    except FileExistsError:
        return path.read_text().strip()
    return secret
