"""Short-lived signed bearer tokens (JWT, HS256, through PyJWT) issued by POST /api/login.

A token names its user only: grants and clusters are read from the config at
every request, so removing a user or a grant takes effect before expiry.
"""

from __future__ import annotations

import secrets
import time
import uuid

import jwt

ISSUER = "repman"
ALGORITHM = "HS256"


class TokenIssuer:
    def __init__(self, secret: str | None, ttl: float) -> None:
        # Without a configured secret the key lives in memory: tokens end with the process.
        self._key = (secret or secrets.token_hex(32)).encode()
        self.ttl = ttl

    def issue(self, user: str) -> str:
        now = int(time.time())
        claims = {"sub": user, "iat": now, "nbf": now, "exp": now + int(self.ttl), "iss": ISSUER,
                  "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def user_of(self, token: str) -> str | None:
        """The token's user, or None when it is forged, expired or malformed."""
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "iss"]})
        except jwt.PyJWTError:
            return None
        sub = claims.get("sub")
        return sub if isinstance(sub, str) else None
