"""Keeping credentials out of logs, messages and records: database passwords and D-Wave tokens."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

# SAPI tokens look like "DEV-<40 hex>"; any long key-like run is hidden too, in case a
# sampler echoes a credential in a form we do not know.
_TOKEN_PATTERNS = (
    re.compile(r"\b[A-Za-z0-9]{2,10}-[0-9A-Fa-f]{20,}\b"),
    re.compile(r"(?i)((?:api[_-]?)?token['\"]?\s*[:=]\s*['\"]?)[^\s'\",;}]+"),
)
_URL_PASSWORD = re.compile(r"://([^:/@]+):[^@]*@")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret, the ``DWAVE_API_TOKEN`` and token-like runs masked."""
    token = os.environ.get("DWAVE_API_TOKEN", "").strip()
    for secret in (*secrets, token):
        if secret:
            text = text.replace(secret, "***")
    text = _TOKEN_PATTERNS[0].sub("***", text)
    return _TOKEN_PATTERNS[1].sub(r"\1***", text)


def redact(url: str) -> str:
    """The storage URL with its password masked, fit for logs and messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return _URL_PASSWORD.sub(r"://\1:***@", url)


def url_secrets(url: str) -> list[str]:
    """The password in a storage URL, if any, for :func:`scrub`."""
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:
        password = None
    return [str(password)] if password else []


class ScrubbingFilter(logging.Filter):
    """A handler filter that masks credentials in every record it passes, from any library:
    at ``--log-level DEBUG`` the D-Wave client logs its request parameters, token included.

    Args:
        secrets: further strings to mask (a storage URL's password); the ``DWAVE_API_TOKEN``
            and token-like runs always are.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message, self._secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self._secrets)
        return True


def scrub_logs(secrets: Iterable[str] = ()) -> None:
    """Put a :class:`ScrubbingFilter` on every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(ScrubbingFilter(secrets))
