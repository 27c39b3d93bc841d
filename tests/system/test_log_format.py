"""Logs: JSON lines for services; coloured console lines when stderr is a terminal (a person
watching `make run`). Both are checked in a real process, with a real pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys

import pytest

from smarthealth.log_config import wants_json

# What `smarthealth serve` does, then an application event and a third-party line.
SCRIPT = """
import logging, structlog
from smarthealth.config import Settings
from smarthealth.log_config import configure_logging, wants_json
settings = Settings(_env_file=None)
configure_logging(settings.log_level, json=wants_json(settings.log_format))
structlog.get_logger("smarthealth.test").info("question_plan", user_id=7, password="hunter2")
logging.getLogger("uvicorn.error").info('"WebSocket /ws/chat?token=abc" [accepted]')
"""
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    env.update(extra)
    return env


def _through_pipe(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=_env(**env), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def _through_terminal(**env: str) -> str:
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            env=_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=follower,
        )
        os.close(follower)
        output = io.BytesIO()
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output.write(chunk)
        assert process.wait(60) == 0
    finally:
        os.close(leader)
    return output.getvalue().decode()


def test_services_log_json_lines() -> None:
    lines = [json.loads(line) for line in _through_pipe().splitlines()]
    event = next(e for e in lines if e["event"] == "question_plan")
    assert event["user_id"] == 7 and event["password"] == "[redacted]"
    assert event["level"] == "info" and event["logger"] == "smarthealth.test"
    third_party = next(e for e in lines if e["logger"] == "uvicorn.error")
    assert "token=abc" not in third_party["event"]


def test_a_terminal_gets_coloured_console_lines() -> None:
    text = _through_terminal()
    assert ANSI.search(text), text  # coloured
    plain = ANSI.sub("", text)
    line = next(line for line in plain.splitlines() if "question_plan" in line)
    assert not line.lstrip().startswith("{")  # not JSON
    assert "user_id=7" in line and "password=[redacted]" in line
    assert "hunter2" not in text and "token=abc" not in text
    assert "/ws/chat" in plain


@pytest.mark.parametrize(
    ("log_format", "terminal", "json_expected"),
    [("json", True, True), ("console", False, False)],
)
def test_log_format_overrides_the_guess(
    log_format: str, terminal: bool, json_expected: bool
) -> None:
    text = (_through_terminal if terminal else _through_pipe)(LOG_FORMAT=log_format)
    first = next(line for line in ANSI.sub("", text).splitlines() if "question_plan" in line)
    assert first.lstrip().startswith("{") == json_expected


def test_wants_json_by_stream() -> None:
    assert wants_json("auto", io.StringIO()) is True  # not a terminal
    assert wants_json("console", io.StringIO()) is False
    assert wants_json("json", io.StringIO()) is True
