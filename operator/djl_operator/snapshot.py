"""spec.model.snapshot: one Hub commit copied into the resource's S3 folder, then served from there.

Layout (in ``spec.aws.artifactBucket``, inside the resource's folder, whose name holds its uid, so
no two resources share an object and the finalizer finds it from the uid alone)::

    <prefix>/<namespace>/<name>/<uid>/snapshots/<commit>/<file path>   the commit's files, uncompressed
    <prefix>/<namespace>/<name>/<uid>/snapshots/<commit>.json          written last: the copy is complete

The Model then reads the commit as its ``weights`` channel (AdditionalModelDataSources, S3Prefix) beside
the artifact's uncompressed files (ModelDataSource), and serving.properties names the channel's mount
(``option.model_id=/opt/ml/additional-model-data-sources/weights``; see :mod:`djl_operator.model_data`).
SageMaker puts both on the instance before the container starts, so the endpoint never reaches the
Hub (nor S3 itself, which is what lets spec.model.networkIsolation isolate it): a Hub outage, a rate
limit or a moved branch cannot break a scale-out or a rollback, and the token stays with the operator.

The revision is resolved to a commit once per generation (status.snapshot.commit is that memory);
a moved branch is picked up by the next spec change.

The copy runs on its own thread pool, never in a reconcile worker: reconciles of this and every other
resource go on, and each one reports the job's progress. It streams: small files in one PutObject,
larger ones in multipart parts read straight from the Hub's response into one reused buffer, so
memory stays at a few parts whatever the file size. Every object carries the Hub's ETag for the file
(``x-amz-meta-hf-etag``); a file whose object is already there with that ETag and size is skipped,
so a copy an operator restart interrupted resumes with the files it had not finished, and a second
apply of the same commit uploads nothing (the marker answers before any file is looked at).
Multipart uploads a dead process left behind are aborted before a copy starts (and by the finalizer,
which deletes the whole folder): none are left to bill.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from djl_operator import kube_secrets, model_data
from djl_operator.api import DjlEndpointResource
from djl_operator.artifacts import package, upload
from djl_operator.conditions import Reason
from djl_operator.hub import HubClient, HubError, HubErrorKind, HubFile, HubRevision, endpoint_from_env
from djl_operator.planner import Next

FOLDER = model_data.SNAPSHOTS_FOLDER
META_ETAG = "hf-etag"
META_COMMIT = "hf-commit"
MIN_PART_BYTES = 5 * 2**20  # S3's smallest part (all but the last)
MAX_PARTS = 10_000  # S3's most parts per upload
PROGRESS_SECONDS = 5.0  # how often a resource whose copy runs reports its progress (at most the poll interval)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
TOKEN_FIELD = "spec.model.tokenSecretRef"

Event = tuple[str, str, str]
# status.snapshot's keys (api.SnapshotStatus), all written every time.
STATUS_KEYS = (
    "repo", "revision", "commit", "generation", "uri", "files", "filesDone", "bytesTotal", "bytesDone", "progress",
)  # fmt: skip


def snapshot_prefix(folder: str, commit: str) -> str:
    """``<resource folder>snapshots/<commit>/``: where the commit's files go."""
    return f"{folder}{FOLDER}/{commit}/"


def marker_key(folder: str, commit: str) -> str:
    """Written after the last file: a complete copy. Outside the model prefix, so LMI never downloads it."""
    return f"{folder}{FOLDER}/{commit}.json"


def part_bytes_for(size: int, configured: int) -> int:
    """The configured part size, grown for files S3's 10,000 parts could not hold."""
    return max(configured, MIN_PART_BYTES, -(-size // MAX_PARTS))


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _safe_path(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


class Cancelled(Exception):
    """The copy was stopped: the spec moved on, the resource is being deleted, the operator stops."""


@dataclass
class Progress:
    files: int
    bytes_total: int
    files_done: int = 0
    bytes_done: int = 0
    bytes_uploaded: int = 0  # bytes sent to S3 by this copy (skipped files not counted)
    files_skipped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sent(self, size: int) -> None:
        with self._lock:
            self.bytes_done += size
            self.bytes_uploaded += size

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1

    def skipped(self, size: int) -> None:
        with self._lock:
            self.files_done += 1
            self.files_skipped += 1
            self.bytes_done += size

    def counts(self) -> tuple[int, int, int, int]:
        with self._lock:
            return self.files, self.files_done, self.bytes_total, self.bytes_done


def percent(done: int, total: int) -> str:
    return "100%" if total <= 0 or done >= total else f"{min(99, done * 100 // total)}%"


# -- the copy ------------------------------------------------------------------------


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _sse(kms_key_id: str | None) -> dict[str, str]:
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}


def _in_place(s3: Any, bucket: str, key: str, file: HubFile) -> bool:
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _code(error) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return bool(head.get("ContentLength") == file.size and metadata.get(META_ETAG) == file.etag)


def _fill(response: Any, view: memoryview) -> int:
    """Read from ``response`` until ``view`` is full or the body ends; the bytes read."""
    filled = 0
    while filled < len(view):
        got = response.readinto(view[filled:])
        if not got:
            break
        filled += got
    return filled


def _copy_file(
    s3: Any,
    hub: HubClient,
    revision: HubRevision,
    file: HubFile,
    *,
    bucket: str,
    key: str,
    kms_key_id: str | None,
    part_bytes: int,
    progress: Progress,
    cancel: threading.Event,
) -> None:
    metadata = {META_ETAG: file.etag, META_COMMIT: revision.commit}
    extra = {"ContentType": "application/octet-stream", "Metadata": metadata, **_sse(kms_key_id)}
    truncated = HubError(HubErrorKind.TRANSIENT, f"the Hub's answer for {file.path} ended early")
    with hub.open_file(revision.repo, revision.commit, file.path) as response:
        size = part_bytes_for(file.size, part_bytes)
        if file.size <= size:
            buffer = bytearray(file.size)
            if _fill(response, memoryview(buffer)) != file.size:
                raise truncated
            s3.put_object(Bucket=bucket, Key=key, Body=bytes(buffer), **extra)
            progress.sent(file.size)
            return
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
        try:
            buffer = bytearray(size)  # the one part buffer: memory stays flat whatever the file size
            view = memoryview(buffer)
            parts: list[dict[str, Any]] = []
            sent = 0
            while sent < file.size:
                if cancel.is_set():
                    raise Cancelled()
                want = min(size, file.size - sent)
                if _fill(response, view[:want]) != want:
                    raise truncated
                reply = s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=len(parts) + 1, Body=bytes(view[:want])
                )
                # Whatever checksum botocore sent with the part, the completion must repeat it.
                checksums = {k: v for k, v in reply.items() if k.startswith("Checksum") and k != "ChecksumType"}
                parts.append({"PartNumber": len(parts) + 1, "ETag": reply["ETag"], **checksums})
                sent += want
                progress.sent(want)
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(ClientError, BotoCoreError):
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise


def copy_commit(
    s3: Any,
    hub: HubClient,
    revision: HubRevision,
    *,
    bucket: str,
    folder: str,
    kms_key_id: str | None,
    part_bytes: int,
    progress: Progress,
    cancel: threading.Event,
) -> None:
    """Copy every file of ``revision`` under ``snapshots/<commit>/``, skipping those already there."""
    prefix = snapshot_prefix(folder, revision.commit)
    for file in revision.files:
        if not _safe_path(file.path):
            raise HubError(HubErrorKind.REFUSED, f"the Hub listed a file path S3 cannot hold safely: {file.path!r}")
    # What a killed operator left half-done, for this commit or any earlier one of the resource (this
    # copy is the resource's only one: reconcile stops the previous before starting the next).
    upload.abort_uploads(s3, bucket, f"{folder}{FOLDER}/")
    for file in revision.files:
        if cancel.is_set():
            raise Cancelled()
        key = prefix + file.path
        if _in_place(s3, bucket, key, file):
            progress.skipped(file.size)
            continue
        _copy_file(
            s3,
            hub,
            revision,
            file,
            bucket=bucket,
            key=key,
            kms_key_id=kms_key_id,
            part_bytes=part_bytes,
            progress=progress,
            cancel=cancel,
        )
        progress.file_done()
    manifest = {
        "repo": revision.repo,
        "revision": revision.revision,
        "commit": revision.commit,
        "files": [{"path": f.path, "size": f.size, "etag": f.etag} for f in revision.files],
    }
    s3.put_object(
        Bucket=bucket,
        Key=marker_key(folder, revision.commit),
        Body=json.dumps(manifest, sort_keys=True).encode(),
        ContentType="application/json",
        Metadata={META_COMMIT: revision.commit, "files": str(len(revision.files)), "bytes": str(revision.total_bytes)},
        **_sse(kms_key_id),
    )


# -- what reconcile sees ---------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """The snapshot's answer to one reconcile: go on with ``resource``, or report and wait."""

    status: dict[str, Any]
    resource: DjlEndpointResource | None = None  # ready: the resource served from the snapshot
    events: tuple[Event, ...] = ()
    reason: Reason = Reason.SNAPSHOTTING
    message: str = ""
    next: Next = Next.POLL
    delay: float | None = None  # Next.RETRY: seconds
    warn: bool = False  # a failure: failureReason and a Warning event

    @property
    def stalled(self) -> bool:
        return self.next is Next.STALLED


def failure_gate(error: BaseException, status: dict[str, Any], *, has_token: bool, secret: str) -> Gate | None:
    """How a Hub or Secret failure is reported (the pure table); None: not ours, reconcile maps it."""
    if isinstance(error, kube_secrets.SecretUnavailable):
        text = f"{TOKEN_FIELD}: {error}; retrying"
        return Gate(status, reason=Reason.HUB_TOKEN_UNAVAILABLE, message=text, next=Next.RETRY, warn=True)
    if not isinstance(error, HubError):
        return None
    if error.kind is HubErrorKind.AUTH_REQUIRED:
        text = f"{error.message}; set {TOKEN_FIELD} to a Secret holding a Hugging Face token that has access"
        return Gate(status, reason=Reason.HUB_AUTH_REQUIRED, message=text, next=Next.STALLED, warn=True)
    if error.kind is HubErrorKind.DENIED:
        text = f"{error.message}; the token in {secret} was refused (check it, and the user's access to the model)"
        return Gate(status, reason=Reason.HUB_ACCESS_DENIED, message=text, next=Next.RETRY, warn=True)
    if error.kind is HubErrorKind.NOT_FOUND:
        hint = "" if has_token else " (a private repo needs a token, too)"
        text = f"{error.message}; check spec.model.id and spec.model.revision{hint}"
        return Gate(status, reason=Reason.HUB_NOT_FOUND, message=text, next=Next.STALLED, warn=True)
    if error.kind is HubErrorKind.REFUSED:
        return Gate(status, reason=Reason.HUB_REQUEST_REFUSED, message=error.message, next=Next.STALLED, warn=True)
    return Gate(status, reason=Reason.RETRYING, message=f"{error.message} (retrying)", next=Next.BACKOFF)


def served_from(resource: DjlEndpointResource, uri: str) -> DjlEndpointResource:
    """The resource as the deployment sees it: its model id is the snapshot's S3 prefix."""
    model = resource.spec.model.model_copy(
        update={"id": uri, "revision": None, "snapshot": False, "token_secret_ref": None}
    )
    return resource.model_copy(update={"spec": resource.spec.model_copy(update={"model": model})})


@dataclass
class _Job:
    key: tuple[str, ...]  # (repo, revision, bucket, folder)
    revision: HubRevision
    bucket: str
    folder: str
    progress: Progress
    cancel: threading.Event
    started: float
    future: concurrent.futures.Future[None] | None = None
    finished: float | None = None


class Snapshots:
    """The copies in flight in this process, one per resource (thread-safe)."""

    def __init__(
        self,
        *,
        workers: int = 2,
        part_bytes: int = 8 * 2**20,
        endpoint: str | None = None,
        read_secret: Callable[[str, str, str], str] = kube_secrets.read_secret_key,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.part_bytes = part_bytes
        self.endpoint = endpoint or endpoint_from_env()
        self.read_secret = read_secret
        self.clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="snapshot")
        self._jobs: dict[str, _Job] = {}
        self._complete: set[tuple[str, str, str, str]] = set()  # (uid, bucket, folder, commit)
        self._guard = threading.Lock()

    # -- the reconcile's one call --

    def step(self, resource: DjlEndpointResource, s3: Any) -> Gate:
        """Where the snapshot of ``resource`` stands; starts or checks the copy. S3 errors propagate."""
        spec, uid = resource.spec, resource.uid
        model = spec.model
        revision = model.revision or "main"
        bucket = spec.aws.artifact_bucket
        folder = package.resource_prefix(spec.aws.artifact_prefix, resource.namespace, resource.name, uid)
        # Not the generation: a spec change that leaves the model alone (an instance count) must not
        # restart a multi-GB copy; it goes on with the commit resolved when it started.
        key = (model.id, revision, bucket, folder)
        ref = model.token_secret_ref
        secret = f"secret {resource.namespace}/{ref.name} key {ref.key}" if ref else ""
        # Every key, unknown ones as None: status is merge-patched, and a stale commit must not survive.
        base: dict[str, Any] = dict.fromkeys(STATUS_KEYS) | {
            "repo": model.id,
            "revision": revision,
            "generation": resource.generation,
        }

        with self._guard:
            job = self._jobs.get(uid)
        if job is not None and job.key != key:
            if not self._stop(uid):
                return Gate(base, message="stopping the copy of an earlier revision", delay=1.0)
            job = None
        if job is not None:
            return self._job_gate(resource, job, base, secret)

        previous = resource.status.snapshot
        commit: str | None = revision if _COMMIT.match(revision) else None
        if (
            commit is None
            and previous is not None
            and (previous.generation, previous.repo, previous.revision) == (resource.generation, model.id, revision)
        ):
            commit = previous.commit
        if commit is not None:
            done = self._done_gate(resource, s3, bucket, folder, commit, base)
            if done is not None:
                return done
        try:
            token = self.read_secret(resource.namespace, ref.name, ref.key) if ref else None
            hub = HubClient(self.endpoint, token)
            resolved = hub.revision(model.id, commit or revision)
        except (HubError, kube_secrets.SecretUnavailable) as error:
            gate = failure_gate(error, base, has_token=ref is not None, secret=secret)
            assert gate is not None
            return gate
        done = self._done_gate(resource, s3, bucket, folder, resolved.commit, base)
        if done is not None:
            return done
        upload.check_bucket_region(s3, bucket, marker_key(folder, resolved.commit), spec.aws.region)
        job = _Job(
            key,
            resolved,
            bucket,
            folder,
            Progress(len(resolved.files), resolved.total_bytes),
            threading.Event(),
            self.clock(),
        )
        job.future = self._pool.submit(
            copy_commit,
            s3,
            hub,
            resolved,
            bucket=bucket,
            folder=folder,
            kms_key_id=spec.aws.kms_key_id,
            part_bytes=self.part_bytes,
            progress=job.progress,
            cancel=job.cancel,
        )
        with self._guard:
            self._jobs[uid] = job
        uri = f"s3://{bucket}/{snapshot_prefix(folder, resolved.commit)}"
        started = (
            "Normal",
            "SnapshotStarted",
            f"copying {model.id}@{resolved.commit[:12]} ({len(resolved.files)} files, "
            f"{human(resolved.total_bytes)}) from the Hub to {uri}",
        )
        gate = self._job_gate(resource, job, base, secret)
        return Gate(gate.status, events=(started,), message=gate.message)

    def _status(self, job: _Job, base: dict[str, Any]) -> dict[str, Any]:
        files, files_done, total, done = job.progress.counts()
        return {
            **base,
            "commit": job.revision.commit,
            "uri": f"s3://{job.bucket}/{snapshot_prefix(job.folder, job.revision.commit)}",
            "files": files,
            "filesDone": files_done,
            "bytesTotal": total,
            "bytesDone": done,
            "progress": percent(done, total),
        }

    def _job_gate(self, resource: DjlEndpointResource, job: _Job, base: dict[str, Any], secret: str) -> Gate:
        status = self._status(job, base)
        assert job.future is not None
        if not job.future.done():
            message = (
                f"copying {job.revision.repo}@{job.revision.commit[:12]} to S3: {status['progress']} "
                f"({status['filesDone']}/{status['files']} files, {human(status['bytesDone'])} of "
                f"{human(status['bytesTotal'])})"
            )
            return Gate(status, message=message)
        with self._guard:
            self._jobs.pop(resource.uid, None)
        error = job.future.exception()
        if isinstance(error, Cancelled):
            return Gate(status, message="the copy was stopped; starting again", delay=0.0)
        if error is not None:
            gate = failure_gate(
                error, status, has_token=resource.spec.model.token_secret_ref is not None, secret=secret
            )
            if gate is not None:
                return gate
            if isinstance(error, ClientError):
                explained = upload.explain_s3_error(
                    error, bucket=job.bucket, key=None, action="s3:PutObject", region=resource.spec.aws.region
                )
                raise explained or error
            raise error  # reconcile's error vocabulary: throttling backs off, anything else is unexpected
        with self._guard:
            self._complete.add((resource.uid, job.bucket, job.folder, job.revision.commit))
        progress = job.progress
        seconds = self.clock() - job.started
        rate = f", {human(int(progress.bytes_uploaded / seconds))}/s" if seconds > 0 else ""
        finished = (
            "Normal",
            "SnapshotCompleted",
            f"copied {job.revision.repo}@{job.revision.commit[:12]} to {status['uri']}: {progress.files} files, "
            f"{human(progress.bytes_total)} in {seconds:.1f}s ({human(progress.bytes_uploaded)} uploaded{rate}; "
            f"{progress.files_skipped} files already there)",
        )
        return Gate(status, resource=served_from(resource, status["uri"]), events=(finished,))

    def _done_gate(
        self, resource: DjlEndpointResource, s3: Any, bucket: str, folder: str, commit: str, base: dict[str, Any]
    ) -> Gate | None:
        """Ready without a copy when the marker says this commit is complete (one HeadObject, once a process)."""
        uri = f"s3://{bucket}/{snapshot_prefix(folder, commit)}"
        status: dict[str, Any] = {**base, "commit": commit, "uri": uri, "progress": "100%"}
        with self._guard:
            known = (resource.uid, bucket, folder, commit) in self._complete
        previous = resource.status.snapshot
        if not known:
            try:
                head = s3.head_object(Bucket=bucket, Key=marker_key(folder, commit))
            except ClientError as error:
                if _code(error) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
            metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
            files, size = int(metadata.get("files", "0")), int(metadata.get("bytes", "0"))
            status.update(files=files, filesDone=files, bytesTotal=size, bytesDone=size)
            with self._guard:
                self._complete.add((resource.uid, bucket, folder, commit))
        elif previous is not None and previous.commit == commit and previous.files is not None:
            status.update(
                files=previous.files,
                filesDone=previous.files,
                bytesTotal=previous.bytes_total,
                bytesDone=previous.bytes_total,
            )
        return Gate(status, resource=served_from(resource, uri))

    # -- stopping --

    def _stop(self, uid: str) -> bool:
        with self._guard:
            job = self._jobs.get(uid)
        if job is None:
            return True
        job.cancel.set()
        assert job.future is not None
        if not job.future.done():
            return False
        with self._guard:
            if self._jobs.get(uid) is job:
                del self._jobs[uid]
        return True

    def stop(self, uid: str) -> bool:
        """Ask the resource's copy to stop; True once none runs (the finalizer waits for that)."""
        return self._stop(uid)

    def forget(self, uid: str) -> None:
        self._stop(uid)
        with self._guard:
            self._complete = {c for c in self._complete if c[0] != uid}

    def shutdown(self) -> None:
        """Operator exit: stop every copy (the next process resumes them) without waiting for them."""
        with self._guard:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
