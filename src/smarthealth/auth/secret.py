"""The token-signing secret: configured, or (development only) generated once and kept on disk."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from smarthealth.config import Settings

MIN_SECRET_LENGTH = 32


class ConfigurationError(RuntimeError):
    """The service must not start with this configuration; the message says what to fix."""


def resolve_secret_key(settings: Settings) -> str:
    if settings.secret_key:
        if len(settings.secret_key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters long. Generate one "
                'with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        return settings.secret_key
    if settings.app_env != "development":
        raise ConfigurationError(
            "SECRET_KEY is required when APP_ENV is not 'development' (at least "
            f"{MIN_SECRET_LENGTH} characters)."
        )
    return _development_secret(settings.data_dir.expanduser().resolve() / "secret_key")


def _development_secret(path: Path) -> str:
    """Read the generated secret, or create it with mode 0600 (atomically, first writer wins)."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
