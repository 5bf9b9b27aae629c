"""The Resource Groups Tagging API's ``GetResources`` over the emulator's SageMaker resources.

Modelled on the AWS API reference for GetResources (Resource Groups Tagging API
Reference, API version 2017-01-26) and botocore's ``resourcegroupstaggingapi`` model:

* the answer covers one account and the region the request was signed for (the SigV4
  credential scope); the emulator's resources all live in its one region, so any other
  region holds nothing;
* "GetResources does not return untagged resources": without ``TagFilters`` it returns
  every resource that is tagged *or ever was* (the latter with ``"Tags": []``); with
  ``TagFilters`` a resource must satisfy every filter -- a filter with ``Values`` matches
  any of them, a filter without ``Values`` matches the key with any or no value;
* ``ResourceTypeFilters`` entries are ``service[:resourceType]`` as the ARN spells them
  (``sagemaker``, ``sagemaker:endpoint``, ``sagemaker:endpoint-config``, ``sagemaker:model``);
* ``ResourceARNList`` cannot be combined with ``TagFilters``, ``ResourceTypeFilters`` or
  the pagination members; ARNs that do not exist are left out, not an error;
* ``ResourcesPerPage`` is 1..100, ``TagsPerPage`` 100..500 (a resource is never split
  across pages and one without tags counts as one tag); ``ExcludeCompliantResources``
  needs ``IncludeComplianceDetails``; out-of-range or conflicting parameters are
  ``InvalidParameterException``;
* ``PaginationToken`` is opaque and valid for 15 minutes (then
  ``PaginationTokenExpiredException``); the last page carries an empty token, which both
  botocore's and aws-sdk-go-v2's paginators read as "no more pages";
* deleted resources disappear at once.

Not modelled: tag policies (``IncludeComplianceDetails`` reports every resource compliant),
resources of services other than SageMaker (S3 bucket tags included), and the page
default when ``ResourcesPerPage`` is absent (the reference does not document one; we use 100).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from . import errors
from .errors import ApiError
from .sagemaker import SageMaker, TaggedResource

TARGET_PREFIX = "ResourceGroupsTaggingAPI_20170126"
SERVICE = "resourcegroupstaggingapi"  # botocore's name, and the call log's
TOKEN_LIFETIME = 15 * 60  # "A PaginationToken is valid for a maximum of 15 minutes."
DEFAULT_RESOURCES_PER_PAGE = 100

Clock = Callable[[], float]


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def _arn_type(arn: str) -> tuple[str, str]:
    """``(service, resourceType)`` as an ARN spells them: ``arn:aws:sagemaker:r:a:endpoint/x``."""
    parts = arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    kind = resource.split("/", 1)[0] if "/" in resource else resource.split(":", 1)[0]
    return (parts[2] if len(parts) > 2 else ""), kind


def _type_matches(arn: str, filters: list[str]) -> bool:
    service, kind = _arn_type(arn)
    for wanted in filters:
        want_service, _, want_kind = wanted.partition(":")
        if want_service == service and (not want_kind or want_kind == kind):
            return True
    return False


def _tags_match(tags: dict[str, str], filters: list[dict[str, Any]]) -> bool:
    for f in filters:
        if f["Key"] not in tags:
            return False
        values = f.get("Values")
        if values and tags[f["Key"]] not in values:
            return False
    return True


class TaggingApi:
    """``handle(operation, params, region)`` -> response dict; raises :class:`ApiError` like AWS."""

    def __init__(self, sagemaker: SageMaker, clock: Clock = time.time) -> None:
        self._sagemaker = sagemaker
        self._clock = clock
        self._ops: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {"GetResources": self.get_resources}

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self._ops)

    def handle(self, operation: str, params: dict[str, Any], region: str) -> dict[str, Any]:
        return errors.operation(self._ops, TARGET_PREFIX, operation)(params, region)

    # -- tokens: the last ARN served and when the token was issued --

    def _token(self, after: str) -> str:
        raw = json.dumps({"after": after, "issued": self._clock()}).encode()
        return base64.urlsafe_b64encode(raw).decode()

    def _after(self, token: str | None) -> str | None:
        if not token:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            after, issued = data["after"], float(data["issued"])
        except (ValueError, TypeError, KeyError, binascii.Error) as exc:
            raise invalid("The specified pagination token is invalid.") from exc
        if not isinstance(after, str):
            raise invalid("The specified pagination token is invalid.")
        if self._clock() - issued > TOKEN_LIFETIME:
            raise ApiError(
                "PaginationTokenExpiredException",
                "The pagination token has expired. A pagination token is valid for a maximum of 15 minutes.",
            )
        return after

    def _check(self, p: dict[str, Any]) -> None:
        if p.get("ResourceARNList") is not None:
            for other in ("TagFilters", "ResourceTypeFilters", "ResourcesPerPage", "TagsPerPage", "PaginationToken"):
                if p.get(other) is not None:
                    raise invalid(f"ResourceARNList cannot be specified together with {other}.")
        per_page = p.get("ResourcesPerPage")
        if per_page is not None and not 1 <= per_page <= 100:
            raise invalid(f"ResourcesPerPage must be between 1 and 100, got {per_page}.")
        tags_per_page = p.get("TagsPerPage")
        if tags_per_page is not None and not 100 <= tags_per_page <= 500:
            raise invalid(f"TagsPerPage must be between 100 and 500, got {tags_per_page}.")
        if p.get("ExcludeCompliantResources") and not p.get("IncludeComplianceDetails"):
            raise invalid("ExcludeCompliantResources can be specified only if IncludeComplianceDetails is true.")
        if len(p.get("ResourceTypeFilters") or []) > 100:
            raise invalid("ResourceTypeFilters can include at most 100 items.")

    def get_resources(self, p: dict[str, Any], region: str) -> dict[str, Any]:
        self._check(p)
        after = self._after(p.get("PaginationToken"))
        resources: list[TaggedResource] = []
        if region == self._sagemaker.region:
            resources = sorted(self._sagemaker.tagged_resources(), key=lambda r: r.arn)
        tag_filters = p.get("TagFilters") or []
        if p.get("ResourceARNList") is not None:
            wanted = set(p["ResourceARNList"])
            resources = [r for r in resources if r.arn in wanted and r.ever_tagged]
        elif tag_filters:
            resources = [r for r in resources if _tags_match(r.tags, tag_filters)]
        else:
            resources = [r for r in resources if r.ever_tagged]
        if p.get("ResourceTypeFilters"):
            resources = [r for r in resources if _type_matches(r.arn, p["ResourceTypeFilters"])]
        if p.get("ExcludeCompliantResources"):
            resources = []  # no tag policy: every resource is compliant
        if after is not None:
            resources = [r for r in resources if r.arn > after]
        page = self._page(resources, p.get("ResourcesPerPage"), p.get("TagsPerPage"))
        mappings = []
        for r in page:
            mapping: dict[str, Any] = {
                "ResourceARN": r.arn,
                "Tags": [{"Key": k, "Value": v} for k, v in r.tags.items()],
            }
            if p.get("IncludeComplianceDetails"):
                mapping["ComplianceDetails"] = {
                    "NoncompliantKeys": [],
                    "KeysWithNoncompliantValues": [],
                    "ComplianceStatus": True,
                }
            mappings.append(mapping)
        more = len(page) < len(resources)
        return {
            "PaginationToken": self._token(page[-1].arn) if more and page else "",
            "ResourceTagMappingList": mappings,
        }

    @staticmethod
    def _page(resources: list[TaggedResource], per_page: int | None, tags_per_page: int | None) -> list[TaggedResource]:
        if tags_per_page is None:
            return resources[: per_page or DEFAULT_RESOURCES_PER_PAGE]
        page: list[TaggedResource] = []
        used = 0
        for r in resources[: per_page or DEFAULT_RESOURCES_PER_PAGE]:
            weight = max(1, len(r.tags))
            if page and used + weight > tags_per_page:
                break
            page.append(r)
            used += weight
        return page
