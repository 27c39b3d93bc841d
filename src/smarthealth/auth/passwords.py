"""Argon2id password hashing (pwdlib). Hashing is CPU-bound: callers run it in a thread."""

from __future__ import annotations

import asyncio

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))
# Verified when the account does not exist, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-used-for-timing")

MIN_PASSWORD = 8
MAX_PASSWORD = 128


def password_problem(password: str, email: str) -> str | None:
    """A Spanish reason the password is unacceptable, or None."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"La contraseña debe tener entre {MIN_PASSWORD} y {MAX_PASSWORD} caracteres."
    if password.strip().lower() == email.strip().lower():
        return "La contraseña no puede ser igual al correo."
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-work check: an absent account still pays for one Argon2 verification."""
    target = password_hash or _DUMMY_HASH
    ok = await asyncio.to_thread(_hasher.verify, password, target)
    return ok and password_hash is not None


def hash_password_sync(password: str) -> str:
    return _hasher.hash(password)
