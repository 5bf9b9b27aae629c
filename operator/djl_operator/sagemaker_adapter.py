"""Find / create / update / delete SageMaker resources, idempotently and only our own.

"Not found" on a delete counts as done, so every call here can be repeated
after a crash. Ownership is proven only by the owner-uid tag AWS holds:
"already exists" on a create counts as done only when the existing resource
carries our tag (else :class:`~djl_operator.errors.OwnershipConflict`), and
nothing without the tag is ever changed or deleted. Nothing a user can write
(status, annotations) is taken as proof; proofs are cached in process memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from djl_operator import naming, rollout
from djl_operator.aws_errors import ErrorKind, classify
from djl_operator.errors import OwnershipConflict
from djl_operator.planner import ObservedEndpoint


class OwnershipProofs:
    """Process-memory cache of "this ARN, created then, carries that owner uid" (bounded, thread-safe).

    Keyed by creation time as well as ARN: SageMaker ARNs are built from the
    name, so an endpoint deleted and recreated by someone else has the same ARN
    but not the same CreationTime. An endpoint we just created is remembered
    without a time and bound to the first CreationTime we then describe.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._proofs: OrderedDict[tuple[str, str], str | None] = OrderedDict()

    def known(self, arn: str, created: str, uid: str) -> bool:
        with self._lock:
            key = (arn, uid)
            if key not in self._proofs:
                return False
            bound = self._proofs[key]
            if bound is None:  # created by us: bind it to what we see first
                self._proofs[key] = created
                return True
            return bound == created

    def remember(self, arn: str, created: str | None, uid: str) -> None:
        with self._lock:
            self._proofs[(arn, uid)] = created
            self._proofs.move_to_end((arn, uid))
            while len(self._proofs) > self._max:
                self._proofs.popitem(last=False)

    def forget_owner(self, uid: str) -> None:
        with self._lock:
            for key in [k for k in self._proofs if k[1] == uid]:
                del self._proofs[key]


@dataclass(frozen=True)
class OwnedEndpoints:
    """Every endpoint in one region that carries an owner's tag (what GetResources reports)."""

    names: tuple[str, ...]


class SageMakerAdapter:
    def __init__(self, client: Any, proofs: OwnershipProofs | None = None, tagging: Any = None) -> None:
        self.client = client
        self.proofs = proofs or OwnershipProofs()
        self.tagging = tagging

    # -- endpoints ---------------------------------------------------------------

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        return self._describe(self.client.describe_endpoint, EndpointName=name)

    def observe_endpoint(self, name: str, *, owner_uid: str) -> ObservedEndpoint | None:
        """The endpoint as the planner sees it; ``owned`` is proven by its tags (or a cached proof)."""
        described = self.describe_endpoint(name)
        if described is None:
            return None
        arn = described["EndpointArn"]
        created = str(described.get("CreationTime", ""))
        owned = self.proofs.known(arn, created, owner_uid)
        if not owned and self.is_owned(arn, owner_uid):
            self.proofs.remember(arn, created, owner_uid)
            owned = True
        variant = (described.get("ProductionVariants") or [{}])[0]
        return ObservedEndpoint(
            name=described.get("EndpointName", name),
            arn=arn,
            status=described["EndpointStatus"],
            config_name=described.get("EndpointConfigName", ""),
            failure_reason=described.get("FailureReason"),
            owned=owned,
            last_modified=described.get("LastModifiedTime"),
            current_instances=variant.get("CurrentInstanceCount"),
            desired_instances=variant.get("DesiredInstanceCount"),
            progress=rollout.progress(described),
        )

    def create_endpoint(self, request: dict[str, Any], *, owner_uid: str) -> str | None:
        """Creates the endpoint; its ARN, or None when it already existed and is ours."""
        created = self._create(self.client.create_endpoint, request)
        if created is None:
            self._check_existing("endpoint", request["EndpointName"], owner_uid)
            return None
        arn = str(created["EndpointArn"])
        self.proofs.remember(arn, None, owner_uid)
        return arn

    def update_endpoint(self, request: dict[str, Any]) -> None:
        self.client.update_endpoint(**request)

    def delete_endpoint(self, name: str) -> None:
        self._delete(self.client.delete_endpoint, EndpointName=name)

    def owned_endpoints(self, owner_uid: str) -> OwnedEndpoints:
        """Every endpoint in this region tagged with ``owner_uid``, whatever its name (one Tagging API page each)."""
        if self.tagging is None:
            return OwnedEndpoints(())
        names: list[str] = []
        token = ""
        while True:
            page = self.tagging.get_resources(
                TagFilters=[{"Key": naming.TAG_OWNER_UID, "Values": [owner_uid]}],
                ResourceTypeFilters=["sagemaker:endpoint"],
                ResourcesPerPage=100,
                **({"PaginationToken": token} if token else {}),
            )
            for mapping in page.get("ResourceTagMappingList", []):
                name = naming.name_from_arn(mapping.get("ResourceARN", ""), "endpoint")
                # The filter already matched; the tags are checked again so a lax server cannot widen it.
                if name and naming.is_owned_by(mapping.get("Tags", []), owner_uid):
                    names.append(name)
            token = page.get("PaginationToken") or ""
            if not token:
                return OwnedEndpoints(tuple(sorted(set(names))))

    # -- models and configs ------------------------------------------------------

    def create_model(self, request: dict[str, Any], *, owner_uid: str) -> None:
        if self._create(self.client.create_model, request) is None:
            self._check_existing("model", request["ModelName"], owner_uid)

    def create_endpoint_config(self, request: dict[str, Any], *, owner_uid: str) -> None:
        if self._create(self.client.create_endpoint_config, request) is None:
            self._check_existing("endpoint config", request["EndpointConfigName"], owner_uid)

    def describe_endpoint_config(self, name: str) -> dict[str, Any] | None:
        return self._describe(self.client.describe_endpoint_config, EndpointConfigName=name)

    def describe_model(self, name: str) -> dict[str, Any] | None:
        return self._describe(self.client.describe_model, ModelName=name)

    def owned_models(self, name_part: str, owner_uid: str, skip: frozenset[str] = frozenset()) -> list[str]:
        """Our models whose names contain ``name_part``, except those in ``skip`` (not even checked)."""
        return self._owned(self.client.list_models, "Models", "ModelName", "ModelArn", name_part, owner_uid, skip)

    def owned_endpoint_configs(self, name_part: str, owner_uid: str, skip: frozenset[str] = frozenset()) -> list[str]:
        return self._owned(
            self.client.list_endpoint_configs,
            "EndpointConfigs",
            "EndpointConfigName",
            "EndpointConfigArn",
            name_part,
            owner_uid,
            skip,
        )

    def delete_model(self, name: str) -> None:
        self._delete(self.client.delete_model, ModelName=name)

    def delete_endpoint_config(self, name: str) -> None:
        self._delete(self.client.delete_endpoint_config, EndpointConfigName=name)

    # -- ownership ---------------------------------------------------------------

    def is_owned(self, arn: str, owner_uid: str) -> bool:
        return naming.is_owned_by(list(self._tags(arn)), owner_uid)

    def _check_existing(self, kind: str, name: str, owner_uid: str) -> None:
        """After "already exists": ours (done), or a conflict that must stall."""
        describe: dict[str, tuple[Callable[..., Any], str, str]] = {
            "endpoint": (self.client.describe_endpoint, "EndpointName", "EndpointArn"),
            "model": (self.client.describe_model, "ModelName", "ModelArn"),
            "endpoint config": (self.client.describe_endpoint_config, "EndpointConfigName", "EndpointConfigArn"),
        }
        call, name_key, arn_key = describe[kind]
        found = self._describe(call, **{name_key: name})
        if found is None:
            # Deleted between our create and our look: the next reconcile creates it again.
            return
        if not self.is_owned(found[arn_key], owner_uid):
            raise OwnershipConflict(kind, name)

    def _tags(self, arn: str) -> Iterator[dict[str, str]]:
        token: str | None = None
        while True:
            page = self.client.list_tags(ResourceArn=arn, **({"NextToken": token} if token else {}))
            yield from page.get("Tags", [])
            token = page.get("NextToken")
            if not token:
                return

    def _owned(
        self,
        list_call: Any,
        key: str,
        name_key: str,
        arn_key: str,
        name_part: str,
        owner_uid: str,
        skip: frozenset[str],
    ) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            page = list_call(NameContains=name_part, MaxResults=100, **({"NextToken": token} if token else {}))
            for item in page.get(key, []):
                name = item[name_key]
                if name not in skip and self.is_owned(item[arn_key], owner_uid):
                    names.append(name)
            token = page.get("NextToken")
            if not token:
                return names

    # -- idempotence -------------------------------------------------------------

    @staticmethod
    def _describe(call: Any, **kwargs: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = call(**kwargs)
            return result
        except ClientError as exc:
            if classify(exc) is ErrorKind.NOT_FOUND:
                return None
            raise

    @staticmethod
    def _create(call: Any, request: dict[str, Any]) -> dict[str, Any] | None:
        """The create's response, or None when a resource of that name already existed."""
        try:
            response: dict[str, Any] = call(**request)
            return response
        except ClientError as exc:
            if classify(exc) is not ErrorKind.ALREADY_EXISTS:
                raise
            return None

    @staticmethod
    def _delete(call: Any, **kwargs: str) -> None:
        try:
            call(**kwargs)
        except ClientError as exc:
            if classify(exc) is not ErrorKind.NOT_FOUND:
                raise
