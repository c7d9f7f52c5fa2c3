"""Password hashes (argon2) and signed, expiring access tokens (JWT, HS256).

A browser session is the same kind of token carried in an HttpOnly cookie; its
``csrf`` claim is the value the readable ``nw_csrf`` cookie holds and that unsafe
cookie-authenticated requests must echo in ``X-CSRF-Token``.
"""

from __future__ import annotations

import secrets
import time
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
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: int, *, csrf: str | None = None) -> str:
        now = int(time.time())
        claims: dict[str, object] = {"sub": str(user_id), "iat": now, "exp": now + self.ttl_seconds}
        if csrf is not None:
            claims["csrf"] = csrf
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> TokenClaims | None:
        """The token's claims, or None when it is malformed, tampered with or expired."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
            user_id = int(claims["sub"])
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        csrf = claims.get("csrf")
        return TokenClaims(user_id, csrf if isinstance(csrf, str) else None)


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
