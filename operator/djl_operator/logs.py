"""Log formats: human-readable text, or one JSON object per line for log pipelines.

Whatever the format and level, no line may carry a credential: botocore's
DEBUG logs print the Authorization header, ``X-Amz-Security-Token``, the
canonical request (with the token in it), STS/IMDS responses and presigned
URLs. Every formatted line goes through :func:`redact`, which masks those
shapes and any credential value the process was given in its environment.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.parse
from typing import Any

MASK = "[REDACTED]"
# Environment variables whose values are secrets wherever they turn up.
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_NAMES = (
    r"x-amz-security-token|x-amz-credential|x-amz-signature|awsaccesskeyid|signature|"
    r"aws_access_key_id|aws_secret_access_key|aws_session_token|"
    r"secretaccesskey|sessiontoken|secretkey|accesskeyid|token|password|credential|"
    r"authorization|proxy-authorization"
)
_PATTERNS = [
    # Headers and canonical-request lines: "Authorization: ...", "x-amz-security-token:..."
    re.compile(rf"(?im)^(\s*(?:{_NAMES})\s*:\s*).+$"),
    # Python reprs of header dicts: {'X-Amz-Security-Token': b'...', 'Authorization': b'...'}
    re.compile(rf"(?i)(['\"](?:{_NAMES})['\"]\s*:\s*b?)(['\"])(?:\\.|(?!\2).)*\2"),
    # JSON bodies and our own JSON lines: "SessionToken": "..."
    re.compile(rf'(?i)(\\?"(?:{_NAMES})\\?"\s*:\s*)(\\?").*?(?<!\\)\2'),
    # XML bodies (STS): <SessionToken>...</SessionToken>
    re.compile(rf"(?is)(<(?:{_NAMES})>).*?(?=</)"),
    # URLs and form bodies: X-Amz-Signature=...&, Signature=..., Credential=AKIA.../...
    re.compile(rf"(?i)((?:^|[?&;,\s])(?:{_NAMES})=)[^&\s,;'\"]+"),
    # Anything still shaped like an AWS access key id.
    re.compile(r"()\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b"),
]
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL-encoded form) in every log line from now on."""
    if not value or len(value) < 6:  # too short to mask without mangling ordinary text
        return
    with _secrets_lock:
        _secrets.update({value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)})


def register_environment_secrets() -> None:
    for name in SECRET_ENV:
        register_secret(os.environ.get(name))


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFormatter(logging.Formatter):
    """Wraps another formatter and redacts the finished line (message, extras and traceback alike)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        # Redact the parts before the inner formatter quotes them (JSON escapes the
        # newlines the header patterns anchor on), then the finished line.
        clean = logging.makeLogRecord(vars(record))
        clean.msg, clean.args = redact(record.getMessage()), None
        if record.exc_info:
            clean.exc_text = redact(self.inner.formatException(record.exc_info))
            clean.exc_info = None
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                setattr(clean, key, redact(value))
        return redact(self.inner.format(clean))


# Attributes every LogRecord has; anything else was passed through `extra=` and is worth keeping.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class RoutineKopfLines(logging.Filter):
    """Waiting is not an error, and a tick that found nothing due is not news.

    The operator raises ``kopf.TemporaryError`` only to have its finalizer called again while
    AWS deletes, or its new shard does after a reshard (kopf logs that at ERROR: here it is INFO),
    and its per-resource tick succeeds after each look, like the wake-up of the tick and the watch
    for resources deleted around a reshard on each watch event (kopf logs each at INFO: here it is
    DEBUG). Real failures keep their level.
    """

    _TICK = re.compile(r"^(Timer '[\w.]*tick'|Handler '[\w.]*(finalize_orphan|wake)') succeeded\.$")
    _WAIT = re.compile(r"^Handler '[\w.]*(delete_endpoint|wait_for_owner)' failed temporarily: ")

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kopf"):
            return True
        message = record.getMessage()
        if record.levelno == logging.INFO and self._TICK.match(message):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        elif record.levelno == logging.ERROR and self._WAIT.match(message):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return record.levelno >= logging.getLogger().getEffectiveLevel()


def configure(fmt: str, verbose: bool) -> None:
    """The process's only log handler: ``fmt`` lines, every one redacted.

    kopf's own ``configure`` runs first (asyncio noise off) and adds a handler of
    its own, unredacted; the handler list is then replaced with ours.
    """
    import kopf

    kopf.configure(verbose=verbose)
    handler = logging.StreamHandler()
    inner = JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(RedactingFormatter(inner))
    handler.addFilter(RoutineKopfLines())
    register_environment_secrets()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
