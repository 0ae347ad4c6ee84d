"""Argon2 password hashing, run off the event loop (each hash takes tens of milliseconds)."""

from pwdlib import PasswordHash
from starlette.concurrency import run_in_threadpool

_hasher = PasswordHash.recommended()
# Verified when the e-mail is unknown, so that a login takes as long whether or not it exists.
_UNKNOWN_USER_HASH = _hasher.hash("not a real password")


async def hash_password(password: str) -> str:
    return await run_in_threadpool(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    return await run_in_threadpool(_hasher.verify, password, password_hash or _UNKNOWN_USER_HASH)
