"""Members' passwords (argon2id) and bearer tokens, and the checks every route shares.

A session token is signed and carries the member id and role, so authenticating a request
costs one HMAC, not a database read. Hashing a password is deliberately expensive (OWASP's
argon2id minimum: 19 MiB, 2 iterations, 1 lane) and runs on a worker thread so that one
login never stalls the replica's event loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.errors import ApiError
from domain import tokens

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)
_DUMMY_HASH = HASHER.hash("encore: equalises the time of unknown usernames")


@dataclass(frozen=True)
class Caller:
    member_id: int
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


async def password_matches(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the member exists, so timing does not reveal usernames."""

    def check() -> bool:
        try:
            return HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


class Tokens:
    """Signs and checks the service's three kinds of token with one secret."""

    def __init__(self, secret_key: str, session_seconds: int, admission_seconds: int):
        self._secret = secret_key.encode()
        self._session_seconds = session_seconds
        self._admission_seconds = admission_seconds

    def session(self, member_id: int, role: str) -> str:
        return tokens.sign("session", {"m": member_id, "r": role}, self._secret, time.time(), self._session_seconds)

    def caller(self, authorization: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "log in first: send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
        try:
            claims = tokens.verify(token.strip(), "session", self._secret, time.time())
        except tokens.InvalidToken as error:
            raise ApiError(401, "unauthorized", f"the session token is {error.reason.replace('_', ' ')}", {"WWW-Authenticate": "Bearer"})
        return Caller(int(claims["m"]), str(claims["r"]))

    def ticket(self, member_id: int, number: int, epoch: int, ttl_seconds: float) -> str:
        return tokens.sign("ticket", {"m": member_id, "n": number, "e": epoch}, self._secret, time.time(), ttl_seconds)

    def ticket_claims(self, ticket: str, caller: Caller) -> dict:
        return self._member_claims("ticket", ticket, caller, "bad_ticket", "this queue ticket", "join the queue again")

    def admission(self, member_id: int, number: int, epoch: int, expires_at: float) -> str:
        ttl = max(1.0, expires_at - time.time())
        return tokens.sign("admission", {"m": member_id, "n": number, "e": epoch}, self._secret, time.time(), ttl)

    def check_admission(self, token: str | None, caller: Caller) -> dict:
        """Holds and payments need a genuine, unexpired admission issued to this very member."""
        if not token:
            raise ApiError(403, "not_admitted", "wait for your turn in the queue (X-Admission-Token is missing)")
        return self._member_claims("admission", token, caller, "not_admitted", "the admission token", "rejoin the queue")

    def _member_claims(self, kind: str, token: str, caller: Caller, code: str, what: str, remedy: str) -> dict:
        """The claims of a genuine, unexpired token of ``kind`` bound to ``caller``; else 403 ``code``."""
        try:
            claims = tokens.verify(token, kind, self._secret, time.time())
        except tokens.InvalidToken as error:
            raise ApiError(403, code, f"{what} is {error.reason.replace('_', ' ')}; {remedy}") from None
        if claims.get("m") != caller.member_id:
            raise ApiError(403, code, f"{what} belongs to someone else")
        return claims
