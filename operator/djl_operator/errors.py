"""Errors that mean "the resource, as written, cannot work".

The reconciler maps :class:`SpecError` (and its subclasses) to ``Stalled``:
retrying the same spec cannot succeed, the user has to change something.
Everything else that escapes a reconcile step (throttling, 5xx, timeouts) is
treated as transient and retried.
"""

from __future__ import annotations


def field_path(*parts: str | int) -> str:
    """Join path parts the way users read them: ``spec.model.properties[option.task]``.

    Plain attribute names are joined with dots; map keys that contain dots
    and list indexes go in brackets so the path stays unambiguous.
    """
    out = ""
    for part in parts:
        if isinstance(part, int) or "." in part or not part:
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class SpecError(ValueError):
    """A field of the DjlEndpoint spec is wrong; ``str()`` names it.

    ``field`` is the path a user can find in their manifest, with camelCase
    wire names (``spec.model.engine``, ``spec.model.properties[option.task]``).
    """

    # The condition reason the reconciler reports.
    reason = "InvalidSpec"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ArtifactStoreError(SpecError):
    """S3 refused the artifact for a reason only a spec or IAM change can fix.

    ``code`` is the S3 error code (``NoSuchBucket``, ``AccessDenied``,
    ``PermanentRedirect``...) so callers can report it verbatim.
    """

    def __init__(self, field: str, message: str, *, code: str, bucket: str, key: str | None = None) -> None:
        super().__init__(field, message)
        self.code = code
        self.bucket = bucket
        self.key = key


class OwnershipConflict(Exception):
    """A SageMaker resource has the name we need but not our owner-uid tag.

    Nothing is ever changed or deleted without that tag, so the resource
    stalls until the name is freed or the spec names another.
    """

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(kind, name)
        self.kind = kind
        self.name = name

    def __str__(self) -> str:
        return f"a SageMaker {self.kind} named {self.name} already exists and is not owned by this resource"


class PolicyError(SpecError):
    """The operator policy (set by the cluster admin) does not allow what a field asks for.

    A :class:`SpecError`, so every path that stalls a bad spec before AWS stalls
    this too; the reconciler reports it as ``PolicyViolation`` naming ``rule``.
    """

    reason = "PolicyViolation"

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(field, f"denied by the operator policy ({rule}): {detail}")
        self.rule = rule
