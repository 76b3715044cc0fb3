"""Members' passwords (argon2id) and bearer tokens, and the checks every route shares.

A session token is signed and carries the member id and role, so authenticating a request
costs one HMAC, not a database read. Queue polls, the most frequent request of a sale,
present the same session and ticket every few seconds for the whole wait: a replica
remembers the pairs it has verified (``Tokens.queue_poller``). Hashing a password is
deliberately expensive (OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane) and runs on
a worker thread so that one login never stalls the replica's event loop.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.errors import ApiError
from domain import tokens

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)
_DUMMY_HASH = HASHER.hash("encore: equalises the time of unknown usernames")


@dataclass(frozen=True, slots=True)
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

    def __init__(self, secret_key: str, session_seconds: int, admission_seconds: int, pollers_remembered_max: int = 0):
        self._key = tokens.TokenKey(secret_key.encode())
        self._session_seconds = session_seconds
        self._admission_seconds = admission_seconds
        self._pollers: dict[str, tuple[str, Caller, int | None, int]] = {}
        self._pollers_max = pollers_remembered_max
        self.polls_remembered = 0  # polls answered from the remembered pairs
        self.polls_verified = 0  # polls whose two tokens were checked

    def session(self, member_id: int, role: str) -> str:
        return self._key.sign("session", {"m": member_id, "r": role}, time.time(), self._session_seconds)

    def caller(self, authorization: str | None) -> Caller:
        return self._session(authorization)[0]

    def _session(self, authorization: str | None) -> tuple[Caller, int]:
        """The caller and the session's expiry (epoch seconds), or 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "log in first: send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
        try:
            claims = self._key.verify(token.strip(), "session", time.time())
        except tokens.InvalidToken as error:
            raise ApiError(401, "unauthorized", f"the session token is {error.reason.replace('_', ' ')}", {"WWW-Authenticate": "Bearer"})
        return Caller(int(claims["m"]), str(claims["r"])), claims["exp"]

    def ticket(self, member_id: int, number: int, epoch: int, ttl_seconds: float) -> str:
        return self._key.sign("ticket", {"m": member_id, "n": number, "e": epoch}, time.time(), ttl_seconds)

    def ticket_claims(self, ticket: str, caller: Caller) -> dict:
        return self._member_claims("ticket", ticket, caller, "bad_ticket", "this queue ticket", "join the queue again")

    def queue_poller(self, authorization: str | None, ticket: str) -> tuple[Caller, int | None]:
        """Who polls with ``ticket``, and its number (``None``: drawn at the opening); refused
        as ``caller`` and ``ticket_claims`` refuse.

        Each of up to 200,000 waiting people sends the same two tokens every few seconds
        for the whole wait, and checking them is most of a poll's own work. So a pair that
        passed is remembered until the sooner of its two expiries, for at most
        ``pollers_remembered_max`` tickets (the oldest forgotten first, about 600 bytes
        each); only the very same two strings are answered from memory.
        """
        remembered = self._pollers.get(ticket)
        if remembered is not None and _same(remembered[0], authorization) and time.time() < remembered[3]:
            self.polls_remembered += 1
            return remembered[1], remembered[2]
        self.polls_verified += 1
        caller, session_expires = self._session(authorization)
        claims = self.ticket_claims(ticket, caller)
        number = claims.get("n")
        if self._pollers_max:
            if remembered is None and len(self._pollers) >= self._pollers_max:
                del self._pollers[next(iter(self._pollers))]
            self._pollers[ticket] = (authorization, caller, number, min(session_expires, claims["exp"]))
        return caller, number

    def admission(self, member_id: int, number: int, epoch: int, expires_at: float) -> str:
        """Signed as of the admission's start, so every claim of one admission, in any replica,
        gets the very same token."""
        return self._key.sign("admission", {"m": member_id, "n": number, "e": epoch},
                              expires_at - self._admission_seconds, self._admission_seconds)

    def check_admission(self, token: str | None, caller: Caller) -> dict:
        """Holds and payments need a genuine, unexpired admission issued to this very member."""
        if not token:
            raise ApiError(403, "not_admitted", "wait for your turn in the queue (X-Admission-Token is missing)")
        return self._member_claims("admission", token, caller, "not_admitted", "the admission token", "rejoin the queue")

    def _member_claims(self, kind: str, token: str, caller: Caller, code: str, what: str, remedy: str) -> dict:
        """The claims of a genuine, unexpired token of ``kind`` bound to ``caller``; else 403 ``code``."""
        try:
            claims = self._key.verify(token, kind, time.time())
        except tokens.InvalidToken as error:
            raise ApiError(403, code, f"{what} is {error.reason.replace('_', ' ')}; {remedy}") from None
        if claims.get("m") != caller.member_id:
            raise ApiError(403, code, f"{what} belongs to someone else")
        return claims


def _same(remembered_authorization: str, authorization: str | None) -> bool:
    """Compared in constant time: someone holding another person's ticket must not learn their
    session token from how long a wrong one takes to be refused."""
    try:
        return authorization is not None and hmac.compare_digest(remembered_authorization, authorization)
    except TypeError:  # not ASCII: not the header that was remembered
        return False
