"""Find / create / update / delete SageMaker resources, idempotently.

"Already exists" on a create and "not found" on a delete count as done, so
every call here can be repeated after a crash. Nothing that lacks our owner
tag is ever changed or deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from djl_operator import naming
from djl_operator.aws_errors import ErrorKind, classify
from djl_operator.planner import ObservedEndpoint


class SageMakerAdapter:
    def __init__(self, client: Any) -> None:
        self.client = client

    # -- endpoints ---------------------------------------------------------------

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        return self._describe(self.client.describe_endpoint, EndpointName=name)

    def observe_endpoint(self, name: str, *, owner_uid: str, known_arn: str | None) -> ObservedEndpoint | None:
        """The endpoint as the planner sees it; ownership is checked by tag unless we recorded its ARN."""
        described = self.describe_endpoint(name)
        if described is None:
            return None
        arn = described["EndpointArn"]
        owned = arn == known_arn or self.is_owned(arn, owner_uid)
        return ObservedEndpoint(
            name=name,
            arn=arn,
            status=described["EndpointStatus"],
            config_name=described.get("EndpointConfigName", ""),
            failure_reason=described.get("FailureReason"),
            owned=owned,
        )

    def create_endpoint(self, request: dict[str, Any]) -> str | None:
        """Creates the endpoint; its ARN, or None when it already existed."""
        created = self._create(self.client.create_endpoint, request)
        return str(created["EndpointArn"]) if created else None

    def update_endpoint(self, request: dict[str, Any]) -> None:
        self.client.update_endpoint(**request)

    def delete_endpoint(self, name: str) -> None:
        self._delete(self.client.delete_endpoint, EndpointName=name)

    # -- models and configs ------------------------------------------------------

    def create_model(self, request: dict[str, Any]) -> None:
        self._create(self.client.create_model, request)

    def create_endpoint_config(self, request: dict[str, Any]) -> None:
        self._create(self.client.create_endpoint_config, request)

    def describe_endpoint_config(self, name: str) -> dict[str, Any] | None:
        return self._describe(self.client.describe_endpoint_config, EndpointConfigName=name)

    def owned_models(self, name_prefix: str, owner_uid: str, skip: frozenset[str] = frozenset()) -> list[str]:
        """Our models whose names start with ``name_prefix``, except those in ``skip`` (not even checked)."""
        return self._owned(self.client.list_models, "Models", "ModelName", "ModelArn", name_prefix, owner_uid, skip)

    def owned_endpoint_configs(self, name_prefix: str, owner_uid: str, skip: frozenset[str] = frozenset()) -> list[str]:
        return self._owned(
            self.client.list_endpoint_configs,
            "EndpointConfigs",
            "EndpointConfigName",
            "EndpointConfigArn",
            name_prefix,
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
        name_prefix: str,
        owner_uid: str,
        skip: frozenset[str],
    ) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            page = list_call(NameContains=name_prefix, MaxResults=100, **({"NextToken": token} if token else {}))
            for item in page.get(key, []):
                # NameContains matches anywhere; our names start with the prefix.
                name = item[name_key]
                if name.startswith(name_prefix) and name not in skip and self.is_owned(item[arn_key], owner_uid):
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
        """The create's response, or None when the resource already existed (which counts as done)."""
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
