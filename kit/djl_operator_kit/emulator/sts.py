"""STS ``GetCallerIdentity`` over the AWS Query protocol (form-encoded request, XML response).

Modelled on the STS API reference (GetCallerIdentity, API version 2011-06-15) and botocore's
``sts`` model:

* the request is ``Action=GetCallerIdentity&Version=2011-06-15`` (POST form body or GET query);
  the answer is ``<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">``
  with ``GetCallerIdentityResult/{UserId,Account,Arn}`` and ``ResponseMetadata/RequestId``;
* "No permissions are required to perform this operation": an injected ``deny`` does not
  reach it (throttling and internal errors do, as ``Throttling`` / ``InternalFailure``);
* errors are ``<ErrorResponse><Error><Type>Sender|Receiver</Type><Code/><Message/></Error>
  <RequestId/></ErrorResponse>``, as every Query-protocol service sends them.

Who the caller is, derived from the SigV4 access key id (the emulator has no IAM): every key
belongs to the emulator's one account (the account in every ARN it serves) and is an IAM user
named after the key, so ``Arn`` is ``arn:aws:iam::<account>:user/<access key id>`` and
``UserId`` is a stable ``AIDA``-prefixed id made from the key (IAM user ids start with AIDA).
An unsigned request is ``MissingAuthenticationToken``, as AWS answers.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from .errors import ApiError

SERVICE = "sts"
VERSION = "2011-06-15"
NAMESPACE = f"https://sts.amazonaws.com/doc/{VERSION}/"
OPERATIONS = frozenset({"GetCallerIdentity"})
# Query-protocol names for the faults SageMaker calls ThrottlingException / AccessDeniedException.
FAULT_CODES = {"ThrottlingException": "Throttling", "AccessDeniedException": "AccessDenied"}


def form(body: bytes, query: str) -> dict[str, str]:
    """The request's parameters: the query string, then the form body (last value wins)."""
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()})
    return params


def user_id(access_key_id: str) -> str:
    digest = base64.b32encode(hashlib.sha256(access_key_id.encode()).digest()).decode()
    return "AIDA" + digest[:17]


def caller_identity(access_key_id: str | None, account_id: str) -> dict[str, str]:
    if not access_key_id:
        raise ApiError("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
    return {
        "UserId": user_id(access_key_id),
        "Account": account_id,
        "Arn": f"arn:aws:iam::{account_id}:user/{access_key_id}",
    }


def result_xml(operation: str, result: dict[str, str], request_id: str) -> bytes:
    members = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in result.items())
    return (
        f'<{operation}Response xmlns="{NAMESPACE}">'
        f"<{operation}Result>{members}</{operation}Result>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{operation}Response>"
    ).encode()


def error_xml(err: ApiError, request_id: str) -> bytes:
    kind = "Receiver" if err.status >= 500 else "Sender"
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}">'
        f"<Error><Type>{kind}</Type><Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId>"
        "</ErrorResponse>"
    ).encode()
