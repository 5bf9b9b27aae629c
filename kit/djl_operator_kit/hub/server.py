"""A local Hugging Face Hub server: what ``huggingface_hub`` (through ``HF_ENDPOINT``) and the operator read.

Served, as the Hub answers them (the header and error names are the ones
``huggingface_hub.utils.hf_raise_for_status`` and ``file_download.get_hf_file_metadata`` read):

* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: model info with ``sha``
  (the commit) and ``siblings`` (with ``size``, ``blobId`` and ``lfs`` when ``?blobs=true``);
* ``GET /api/models/{repo}/tree/{rev}[/{path}]``: the file listing ``snapshot_download`` walks;
* ``GET|HEAD /{repo}/resolve/{rev}/{path}``: the file, with ``X-Repo-Commit``, ``ETag`` (the git blob
  id, or the LFS sha256 with ``X-Linked-Etag``/``X-Linked-Size`` as well), ``Content-Length`` and
  single ``Range`` requests (206, or 416 with ``Content-Range: bytes */size``).

Revisions are branches, tags or full commit shas; an unknown one is 404 ``RevisionNotFound``. A
gated repo shows its model info to anyone (as the Hub does) but answers file downloads with 401
``GatedRepo`` without a token and 403 ``GatedRepo`` for a user not granted access; a token the
Hub does not know is 401 ``Invalid credentials in Authorization header``; an unknown repo is 401
``RepoNotFound`` without credentials and 404 with them (the Hub hides private repos that way).

Files are bytes built at test time (tiny models) or :class:`Synthetic`: deterministic content of
any size generated on the fly, never held on disk or in memory (the snapshot memory benchmark).

Nothing in :attr:`LocalHub.calls` holds a token: requests are recorded with the user the token
named. Tests can slow a file down (``hold``) or make requests fail (``fail``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_BLOCK = 1 << 20
# What the Hub stores through LFS (git-lfs: large or binary files); the rest are plain git blobs.
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".gguf")
_LFS_MIN_SIZE = 10 * 2**20


@dataclass(frozen=True)
class Synthetic:
    """``size`` bytes of deterministic content generated on the fly (each 1 MiB block differs)."""

    size: int
    seed: int = 0

    def chunks(self, start: int, end: int, chunk: int = _BLOCK) -> Iterator[bytes]:
        """The bytes ``[start, end)`` in pieces of at most ``chunk``."""
        base = random.Random(self.seed).randbytes(_BLOCK)
        offset = start
        while offset < end:
            block, within = divmod(offset, _BLOCK)
            data = block.to_bytes(8, "big") + base[8:]
            piece = data[within : within + min(chunk, end - offset)]
            yield piece
            offset += len(piece)


@dataclass(frozen=True)
class _File:
    path: str
    size: int
    blob_id: str  # git's blob id (sha1 of "blob <size>\0" + content, or of the LFS pointer)
    sha256: str | None  # LFS files only
    data: bytes | None = None
    synthetic: Synthetic | None = None

    @property
    def etag(self) -> str:
        return self.sha256 or self.blob_id

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        if self.synthetic is not None:
            yield from self.synthetic.chunks(start, end)
        else:
            assert self.data is not None
            for offset in range(start, end, _BLOCK):
                yield self.data[offset : min(end, offset + _BLOCK)]

    def sibling(self, blobs: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"rfilename": self.path}
        if blobs:
            entry.update(size=self.size, blobId=self.blob_id)
            if self.sha256:
                entry["lfs"] = {"size": self.size, "sha256": self.sha256, "pointerSize": 134}
        return entry

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.blob_id, "size": self.size, "path": self.path}
        if self.sha256:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": 134}
        return entry


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _make_file(path: str, content: bytes | Synthetic) -> _File:
    if isinstance(content, Synthetic):
        # Hashing gigabytes at start-up would cost seconds: the id names the recipe instead.
        digest = hashlib.sha256(f"synthetic:{content.size}:{content.seed}".encode()).hexdigest()
        return _File(path, content.size, _git_blob_id(digest.encode()), digest, synthetic=content)
    lfs = path.endswith(_LFS_SUFFIXES) or len(content) >= _LFS_MIN_SIZE
    if not lfs:
        return _File(path, len(content), _git_blob_id(content), None, data=content)
    sha256 = hashlib.sha256(content).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(content)}\n"
    return _File(path, len(content), _git_blob_id(pointer.encode()), sha256, data=content)


@dataclass
class _Commit:
    sha: str
    files: dict[str, _File]
    date: str


@dataclass
class _Repo:
    repo_id: str
    gated: bool
    granted: set[str] = field(default_factory=set)
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit sha

    def resolve(self, revision: str) -> _Commit | None:
        sha = self.refs.get(revision, revision)
        return self.commits.get(sha)


@dataclass(frozen=True)
class HubCall:
    method: str
    path: str  # as requested, query included
    status: int
    user: str | None  # who the token named; never the token itself
    bytes_out: int


class _HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


_API = re.compile(r"^/api/models/(?P<repo>[^/]+(?:/[^/]+)?)(?:/(?P<kind>revision|tree)/(?P<rev>[^/]+)(?P<rest>/.*)?)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class LocalHub:
    """``with LocalHub() as hub:``; ``hub.url`` is the ``HF_ENDPOINT``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._repos: dict[str, _Repo] = {}
        self._users: dict[str, str] = {}  # token -> user
        self._lock = threading.Lock()
        self._holds: dict[str, threading.Event] = {}
        self._failures: list[tuple[str, int, list[int]]] = []  # (path substring, status, [remaining])
        self.calls: list[HubCall] = []
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- the world --

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_user(self, user: str, token: str) -> None:
        with self._lock:
            self._users[token] = user

    def add_repo(self, repo_id: str, *, gated: bool = False, granted: tuple[str, ...] = ()) -> None:
        with self._lock:
            self._repos[repo_id] = _Repo(repo_id, gated, set(granted))

    def commit(
        self, repo_id: str, files: dict[str, bytes | Synthetic], *, branch: str = "main", tags: tuple[str, ...] = ()
    ) -> str:
        """Make ``files`` the whole tree of a new commit on ``branch``; returns its sha (40 hex)."""
        built = {path: _make_file(path, content) for path, content in sorted(files.items())}
        with self._lock:
            repo = self._repos[repo_id]
            parent = repo.refs.get(branch, "")
            tree = [[f.path, f.blob_id] for f in built.values()]
            text = json.dumps([repo_id, parent, tree, len(repo.commits)]).encode()
            sha = hashlib.sha1(text, usedforsecurity=False).hexdigest()
            date = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            repo.commits[sha] = _Commit(sha, built, date)
            repo.refs[branch] = sha
            for tag in tags:
                repo.refs[tag] = sha
        return sha

    def hold(self, path_part: str) -> threading.Event:
        """Downloads of files whose request path contains ``path_part`` wait until the event is set."""
        event = threading.Event()
        with self._lock:
            self._holds[path_part] = event
        return event

    def fail(self, path_part: str, status: int, times: int = 1) -> None:
        """The next ``times`` requests whose path contains ``path_part`` answer ``status`` (a 503, a 429)."""
        with self._lock:
            self._failures.append((path_part, status, [times]))

    def requests(self, method: str | None = None, path_part: str = "") -> list[HubCall]:
        with self._lock:
            return [c for c in self.calls if (method is None or c.method == method) and path_part in c.path]

    # -- lifecycle --

    def reset(self) -> None:
        """Forget every repo, user, failure and call, and release held downloads (a fresh hub at the same URL)."""
        with self._lock:
            holds = list(self._holds.values())
            self._repos.clear()
            self._users.clear()
            self._holds.clear()
            self._failures.clear()
            self.calls.clear()
        for event in holds:
            event.set()

    def start(self) -> LocalHub:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            holds = list(self._holds.values())
        for event in holds:
            event.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- answering --

    def _user(self, authorization: str | None) -> tuple[str | None, bool]:
        """(user, credentials sent)."""
        if not authorization:
            return None, False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _HubError(401, None, "Invalid credentials in Authorization header")
        with self._lock:
            user = self._users.get(token.strip())
        if user is None:
            raise _HubError(401, None, "Invalid credentials in Authorization header")
        return user, True

    def _repo(self, repo_id: str, authenticated: bool) -> _Repo:
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None:
            message = (
                "Repository Not Found for url. Please make sure you specified the correct `repo_id` and "
                "`repo_type`. If you are trying to access a private or gated repo, make sure you are authenticated."
            )
            raise _HubError(404 if authenticated else 401, "RepoNotFound", message)
        return repo

    @staticmethod
    def _commit(repo: _Repo, revision: str) -> _Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def _check_access(self, repo: _Repo, user: str | None) -> None:
        if not repo.gated or (user is not None and user in repo.granted):
            return
        if user is None:
            raise _HubError(
                401,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in.",
            )
        raise _HubError(
            403,
            "GatedRepo",
            f"Access to model {repo.repo_id} is restricted and you are not in the authorized list. "
            f"Visit https://huggingface.co/{repo.repo_id} to ask for access.",
        )

    def _injected_failure(self, path: str) -> int | None:
        with self._lock:
            for part, status, remaining in self._failures:
                if part in path and remaining[0] > 0:
                    remaining[0] -= 1
                    return status
        return None

    def _hold_for(self, path: str) -> threading.Event | None:
        with self._lock:
            return next((event for part, event in self._holds.items() if part in path), None)

    def model_info(self, repo_id: str, revision: str | None, blobs: bool, authorization: str | None) -> dict[str, Any]:
        _, authenticated = self._user(authorization)
        repo = self._repo(repo_id, authenticated)
        commit = self._commit(repo, revision or "main")
        return {
            "_id": hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": commit.date,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [f.sibling(blobs) for f in commit.files.values()],
        }

    def tree(self, repo_id: str, revision: str, folder: str, authorization: str | None) -> list[dict[str, Any]]:
        _, authenticated = self._user(authorization)
        commit = self._commit(self._repo(repo_id, authenticated), revision)
        base = folder.strip("/") + "/" if folder.strip("/") else ""
        files = [f for f in commit.files.values() if f.path.startswith(base)]
        folders = sorted({"/".join(f.path.split("/")[:i]) for f in files for i in range(1, f.path.count("/") + 1)})
        entries: list[dict[str, Any]] = [{"type": "directory", "oid": "0" * 40, "path": d} for d in folders]
        return entries + [f.tree_entry() for f in files]

    def file(self, repo_id: str, revision: str, path: str, authorization: str | None) -> tuple[_Commit, _File]:
        user, authenticated = self._user(authorization)
        repo = self._repo(repo_id, authenticated)
        self._check_access(repo, user)
        commit = self._commit(repo, revision)
        found = commit.files.get(path)
        if found is None:
            raise _HubError(404, "EntryNotFound", f'{path} does not exist on "{revision}"')
        return commit, found


def _handler_for(hub: LocalHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LocalHub"

        def log_message(self, format: str, *args: Any) -> None:
            """Tests read ``hub.calls`` instead of an access log."""

        def _record(self, status: int, sent: int) -> None:
            try:
                user, _ = hub._user(self.headers.get("Authorization"))
            except _HubError:
                user = "<invalid>"
            with hub._lock:
                hub.calls.append(HubCall(self.command, self.path, status, user, sent))

        def _send_json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self._record(status, len(body))

        def _send_error(self, error: _HubError) -> None:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send_json(error.status, {"error": error.message}, headers)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            auth = self.headers.get("Authorization")
            try:
                injected = hub._injected_failure(url.path)
                if injected is not None:
                    raise _HubError(injected, None, "Service temporarily unavailable (injected)")
                api = _API.match(url.path)
                if api is not None:
                    repo, rev = api["repo"], unquote(api["rev"]) if api["rev"] else None
                    if api["kind"] == "tree":
                        assert rev is not None
                        self._send_json(200, hub.tree(repo, rev, unquote(api["rest"] or ""), auth))
                    elif api["rest"]:
                        raise _HubError(404, None, "Not Found")
                    else:
                        blobs = query.get("blobs", ["false"])[0].lower() == "true"
                        self._send_json(200, hub.model_info(repo, rev, blobs, auth))
                    return
                resolve = _RESOLVE.match(url.path)
                if resolve is None:
                    raise _HubError(404, None, "Not Found")
                commit, found = hub.file(resolve["repo"], unquote(resolve["rev"]), unquote(resolve["path"]), auth)
                self._send_file(commit, found)
            except _HubError as error:
                self._send_error(error)

        def _send_file(self, commit: _Commit, found: _File) -> None:
            start, end, status = 0, found.size, 200
            wanted = self.headers.get("Range")
            if wanted:
                match = _RANGE.match(wanted.strip())
                first = last = None
                if match and (match[1] or match[2]):
                    if match[1]:
                        first = int(match[1])
                        last = int(match[2]) + 1 if match[2] else found.size
                    else:  # a suffix: the last N bytes
                        first, last = max(0, found.size - int(match[2])), found.size
                if first is None or last is None or first >= found.size or last <= first:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{found.size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self._record(416, 0)
                    return
                start, end, status = first, min(last, found.size), 206
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("X-Repo-Commit", commit.sha)
            self.send_header("ETag", f'"{found.etag}"')
            if found.sha256:
                self.send_header("X-Linked-Etag", f'"{found.sha256}"')
                self.send_header("X-Linked-Size", str(found.size))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{found.size}")
            self.end_headers()
            sent = 0
            if self.command == "GET":
                hold = hub._hold_for(self.path)
                if hold is not None:
                    hold.wait()
                try:
                    for piece in found.chunks(start, end):
                        self.wfile.write(piece)
                        sent += len(piece)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
            self._record(status, sent)

    return Handler
