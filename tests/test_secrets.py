"""Credentials kept out of log lines by the commands' handler filter, from any library."""

from __future__ import annotations

import io
import logging

import pytest

from optuna_qsvr._secrets import ScrubbingFilter

TOKEN = "DEV-0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def stream(monkeypatch):
    monkeypatch.setenv("DWAVE_API_TOKEN", TOKEN)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    handler.addFilter(ScrubbingFilter(["pg-pass-42"]))
    logger = logging.getLogger("some.library.client")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, out
    logger.removeHandler(handler)


def test_message_arguments_exceptions_and_stacks_are_masked(stream) -> None:
    logger, out = stream
    logger.debug("request %s", {"token": TOKEN, "url": "postgresql://u:pg-pass-42@db/o"})
    try:
        raise RuntimeError(f"401: {TOKEN}")
    except RuntimeError:
        logger.exception("call failed for pg-pass-42")
    logger.warning("where %s was", "pg-pass-42", stack_info=True)
    text = out.getvalue()
    assert TOKEN not in text and "pg-pass-42" not in text
    assert "request {'token': '***', 'url': 'postgresql://u:***@db/o'}" in text
    assert "RuntimeError: 401: ***" in text and "call failed for ***" in text
    assert "Stack (most recent call last)" in text and "where *** was" in text


def test_a_clean_line_is_left_as_it_was(stream) -> None:
    logger, out = stream
    logger.info("fitted %s on %d curves", "r9_t5", 15)
    assert out.getvalue() == "some.library.client fitted r9_t5 on 15 curves\n"
