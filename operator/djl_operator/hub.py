"""The Hugging Face Hub, over plain HTTP (the standard library: the operator image gains no dependency).

Only what a snapshot needs: resolve a revision to a commit with its file list
(``GET /api/models/{repo}/revision/{rev}?blobs=true``, the call ``huggingface_hub.model_info``
makes) and stream one file of that commit (``GET /{repo}/resolve/{commit}/{path}``). Errors keep the
Hub's own code and message (``X-Error-Code`` / ``X-Error-Message``, what ``hf_raise_for_status``
reads) and say whether a spec change, the token or time fixes them.

The token goes in the ``Authorization`` header to the Hub's own host only: a redirect to another
host (the Hub sends LFS files to its CDN with a signed URL) drops it, as ``huggingface_hub`` does.
It is scrubbed from every message this module raises.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from enum import Enum
from typing import IO, Any

DEFAULT_ENDPOINT = "https://huggingface.co"


def endpoint_from_env() -> str:
    """``HF_ENDPOINT`` (the variable ``huggingface_hub`` reads), else the public Hub."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


class HubErrorKind(Enum):
    AUTH_REQUIRED = "auth-required"  # 401/403 without a token: only a tokenSecretRef (a spec change) helps
    DENIED = "denied"  # the token was refused: fixing the Secret or the Hub grant needs no spec change
    NOT_FOUND = "not-found"  # no such repo, revision or file
    REFUSED = "refused"  # any other 4xx: the request itself is wrong
    TRANSIENT = "transient"  # 429, 5xx, a dropped connection: retry with backoff


class HubError(Exception):
    def __init__(self, kind: HubErrorKind, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.status, self.code = kind, message, status, code


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    etag: str  # the LFS sha256, or the git blob id: what the Hub sends as the file's ETag


@dataclass(frozen=True)
class HubRevision:
    repo: str
    revision: str
    commit: str
    files: tuple[HubFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


class _SameHostAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never carry the token to another host."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


class HubClient:
    def __init__(self, endpoint: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._token = token or None
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_SameHostAuth())

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[REDACTED]") if self._token else text

    def _open(self, url: str) -> http.client.HTTPResponse:
        request = urllib.request.Request(url, headers={"User-Agent": "djl-operator", "Accept-Encoding": "identity"})
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            response: http.client.HTTPResponse = self._opener.open(request, timeout=self.timeout)
            return response
        except urllib.error.HTTPError as error:
            raise self._error(error.code, error.headers, url) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise HubError(HubErrorKind.TRANSIENT, self._scrub(f"the Hub did not answer: {error}")) from None

    def _error(self, status: int, headers: Any, url: str) -> HubError:
        code = headers.get("X-Error-Code") if headers is not None else None
        message = (headers.get("X-Error-Message") if headers is not None else None) or http.client.responses.get(
            status, "error"
        )
        where = urllib.parse.urlsplit(url).path
        text = self._scrub(f"the Hub answered {status}{f' {code}' if code else ''} for {where}: {message}")
        if status == 429 or status >= 500:
            kind = HubErrorKind.TRANSIENT
        elif status in (401, 403):
            kind = HubErrorKind.DENIED if self._token else HubErrorKind.AUTH_REQUIRED
        elif status == 404:
            kind = HubErrorKind.NOT_FOUND
        else:
            kind = HubErrorKind.REFUSED
        return HubError(kind, text, status=status, code=code)

    def revision(self, repo: str, revision: str) -> HubRevision:
        """The commit ``revision`` (a branch, tag or commit) names now, and its files with their sizes."""
        url = (
            f"{self.endpoint}/api/models/{urllib.parse.quote(repo, safe='/')}/revision/"
            f"{urllib.parse.quote(revision, safe='')}?blobs=true"
        )
        with self._open(url) as response:
            try:
                info = json.loads(response.read())
                commit = str(info["sha"])
                files = tuple(
                    HubFile(
                        path=str(s["rfilename"]),
                        size=int(s["size"]),
                        etag=str((s.get("lfs") or {}).get("sha256") or s.get("blobId") or ""),
                    )
                    for s in info.get("siblings") or []
                )
            except (ValueError, KeyError, TypeError) as error:
                text = f"the Hub's model info for {repo} did not parse: {error}"
                raise HubError(HubErrorKind.TRANSIENT, text) from None
        if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
            raise HubError(HubErrorKind.TRANSIENT, f"the Hub named no commit for {repo}@{revision}")
        return HubRevision(repo=repo, revision=revision, commit=commit, files=files)

    def open_file(self, repo: str, commit: str, path: str) -> http.client.HTTPResponse:
        """A streaming response with the file's bytes (read it in parts; close it when done)."""
        url = f"{self.endpoint}/{urllib.parse.quote(repo, safe='/')}/resolve/{commit}/{urllib.parse.quote(path)}"
        return self._open(url)
