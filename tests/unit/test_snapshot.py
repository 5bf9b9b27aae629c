"""spec.model.snapshot: the pure decisions (failure table, part sizes, progress, the served resource)."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from pydantic import ValidationError

from djl_operator import api, hub, javaprops, snapshot
from djl_operator.artifacts import render
from djl_operator.conditions import Reason
from djl_operator.desired import desired_deployment
from djl_operator.hub import HubClient, HubError, HubErrorKind
from djl_operator.kube_secrets import SecretUnavailable
from djl_operator.planner import Next

TOKEN = "hf_unitTestTokenValue0123456789"


def _resource(**model: Any) -> api.DjlEndpointResource:
    body = {
        "metadata": {"name": "llm", "namespace": "team", "uid": "uid-7", "generation": 2},
        "spec": {
            "model": {"id": "org/gated", "snapshot": True, **model},
            "instance": {"type": "ml.g5.xlarge"},
            "aws": {"executionRoleArn": "arn:aws:iam::123456789012:role/R", "artifactBucket": "bkt"},
        },
    }
    return api.DjlEndpointResource.from_body(body)


@pytest.mark.parametrize(
    ("error", "has_token", "reason", "next_step"),
    [
        (SecretUnavailable("secret team/hf does not exist"), True, Reason.HUB_TOKEN_UNAVAILABLE, Next.RETRY),
        (HubError(HubErrorKind.AUTH_REQUIRED, "401 GatedRepo"), False, Reason.HUB_AUTH_REQUIRED, Next.STALLED),
        (HubError(HubErrorKind.DENIED, "403 GatedRepo"), True, Reason.HUB_ACCESS_DENIED, Next.RETRY),
        (HubError(HubErrorKind.NOT_FOUND, "404 RevisionNotFound"), True, Reason.HUB_NOT_FOUND, Next.STALLED),
        (HubError(HubErrorKind.REFUSED, "400"), True, Reason.HUB_REQUEST_REFUSED, Next.STALLED),
        (HubError(HubErrorKind.TRANSIENT, "503"), True, Reason.RETRYING, Next.BACKOFF),
    ],
)
def test_failures_map_to_one_reason_and_one_way_to_continue(
    error: BaseException, has_token: bool, reason: Reason, next_step: Next
) -> None:
    gate = snapshot.failure_gate(error, {"repo": "org/gated"}, has_token=has_token, secret="secret team/hf key token")
    assert gate is not None
    assert (gate.reason, gate.next, gate.resource) == (reason, next_step, None)
    # A wait that only time or someone else fixes is never Stalled; failures warn, a transient one does not.
    assert gate.stalled == (next_step is Next.STALLED)
    assert gate.warn == (reason is not Reason.RETRYING)
    assert str(error) in gate.message


def test_other_errors_are_left_to_the_reconciles_vocabulary() -> None:
    assert snapshot.failure_gate(RuntimeError("s3"), {}, has_token=False, secret="") is None


def test_auth_required_names_the_field_to_set() -> None:
    gate = snapshot.failure_gate(HubError(HubErrorKind.AUTH_REQUIRED, "x"), {}, has_token=False, secret="")
    assert gate is not None and "set spec.model.tokenSecretRef" in gate.message


@pytest.mark.parametrize(
    ("size", "configured", "expected"),
    [
        (10, 8 * 2**20, 8 * 2**20),
        (10, 2**20, 5 * 2**20),  # S3's smallest part
        (200 * 2**30, 8 * 2**20, -(-200 * 2**30 // 10_000)),  # 10,000 parts at most
    ],
)
def test_part_size(size: int, configured: int, expected: int) -> None:
    assert snapshot.part_bytes_for(size, configured) == expected
    assert -(-size // snapshot.part_bytes_for(size, configured)) <= snapshot.MAX_PARTS


@pytest.mark.parametrize(
    ("done", "total", "shown"), [(0, 0, "100%"), (0, 10, "0%"), (999, 1000, "99%"), (5, 5, "100%")]
)
def test_percent_reaches_100_only_when_done(done: int, total: int, shown: str) -> None:
    assert snapshot.percent(done, total) == shown


@pytest.mark.parametrize(
    ("path", "safe"),
    [("config.json", True), ("a/b/c.bin", True), ("../x", False), ("/etc/x", False), ("a//b", False), ("a/./b", False)],
)
def test_only_plain_relative_paths_are_copied(path: str, safe: bool) -> None:
    assert snapshot._safe_path(path) is safe


FOLDER = "djl-operator/team/llm/uid-7/"
COMMIT = "a" * 40


def test_the_deployment_mounts_the_snapshot_beside_the_uncompressed_files() -> None:
    resource = _resource(revision="v1", tokenSecretRef={"name": "hf"})
    uri = f"s3://bkt/{FOLDER}snapshots/{COMMIT}/"
    served = snapshot.served_from(resource, uri)
    model = served.spec.model
    assert (model.id, model.revision, model.snapshot, model.token_secret_ref) == (uri, None, False, None)
    assert resource.spec.model.id == "org/gated"  # the resource itself is untouched
    desired = desired_deployment(served)
    properties = javaprops.loads(desired.package.files["serving.properties"].decode())
    # LMI loads the local directory SageMaker mounts the weights channel at.
    assert properties["option.model_id"] == "/opt/ml/additional-model-data-sources/weights"
    assert "option.revision" not in properties
    files = f"{FOLDER}{desired.package.sha256}/model/"
    assert desired.model_request["PrimaryContainer"] == {
        "Image": desired.image_uri,
        "ModelDataSource": {
            "S3DataSource": {"S3Uri": f"s3://bkt/{files}", "S3DataType": "S3Prefix", "CompressionType": "None"}
        },
        "AdditionalModelDataSources": [
            {
                "ChannelName": "weights",
                "S3DataSource": {"S3Uri": uri, "S3DataType": "S3Prefix", "CompressionType": "None"},
            }
        ],
    }
    assert "EnableNetworkIsolation" not in desired.model_request
    assert desired.artifact_uri == f"s3://bkt/{files}"
    assert desired.artifact_keys == tuple(files + path for path in sorted(desired.package.files))
    # The garbage collection keeps exactly these files, and that commit's files and marker.
    assert desired.kept_prefixes == (("bkt", files), ("bkt", f"{FOLDER}snapshots/{COMMIT}"))
    assert desired_deployment(resource).kept_prefixes == ()
    assert "ModelDataUrl" in desired_deployment(resource).model_request["PrimaryContainer"]


def test_the_model_name_covers_the_commit_and_isolation() -> None:
    first = desired_deployment(snapshot.served_from(_resource(), f"s3://bkt/{FOLDER}snapshots/{COMMIT}/"))
    other = desired_deployment(snapshot.served_from(_resource(), f"s3://bkt/{FOLDER}snapshots/{'b' * 40}/"))
    isolated = desired_deployment(
        snapshot.served_from(_resource(networkIsolation=True), f"s3://bkt/{FOLDER}snapshots/{COMMIT}/")
    )
    # The files are the same bytes (option.model_id names the mount), the model is not.
    assert first.package.sha256 == other.package.sha256 == isolated.package.sha256
    names = {first.target.model_name, other.target.model_name, isolated.target.model_name}
    assert len(names) == 3
    assert isolated.model_request["EnableNetworkIsolation"] is True


def test_an_s3_model_id_elsewhere_is_still_read_by_the_container() -> None:
    # Another resource's snapshot, or any other prefix, is not ours to mount: ModelDataUrl as before.
    for uri in (f"s3://bkt/djl-operator/team/llm/uid-8/snapshots/{COMMIT}/", "s3://bkt/weights/"):
        desired = desired_deployment(snapshot.served_from(_resource(), uri))
        assert set(desired.model_request["PrimaryContainer"]) == {"Image", "ModelDataUrl"}
        properties = javaprops.loads(desired.package.files["serving.properties"].decode())
        assert properties["option.model_id"] == uri


def test_status_keys_are_the_api_fields() -> None:
    fields = {f.alias or name for name, f in api.SnapshotStatus.model_fields.items()}
    assert set(snapshot.STATUS_KEYS) == fields


def test_spec_rules() -> None:
    with pytest.raises(ValidationError, match="an s3:// model id is served as it is"):
        _resource(id="s3://bkt/weights/")
    with pytest.raises(ValidationError, match="tokenSecretRef needs snapshot: true"):
        _resource(snapshot=False, tokenSecretRef={"name": "hf"})
    assert _resource(tokenSecretRef={"name": "hf"}).spec.model.token_secret_ref == api.SecretKeyRef(name="hf")
    with pytest.raises(ValidationError, match="networkIsolation needs snapshot: true"):
        _resource(snapshot=False, networkIsolation=True)
    with pytest.raises(ValidationError, match="networkIsolation cannot install requirements"):
        _resource(networkIsolation=True, requirements=["numpy==2.1.0"])
    assert _resource(networkIsolation=True).spec.model.network_isolation is True
    # The token reference never reaches serving.properties.
    assert "tokenSecretRef" not in str(render.serving_properties(_resource(tokenSecretRef={"name": "hf"}).spec))


@pytest.mark.parametrize(
    ("status", "token", "kind"),
    [
        (401, None, HubErrorKind.AUTH_REQUIRED),
        (403, None, HubErrorKind.AUTH_REQUIRED),
        (401, TOKEN, HubErrorKind.DENIED),
        (403, TOKEN, HubErrorKind.DENIED),
        (404, TOKEN, HubErrorKind.NOT_FOUND),
        (400, TOKEN, HubErrorKind.REFUSED),
        (429, TOKEN, HubErrorKind.TRANSIENT),
        (502, None, HubErrorKind.TRANSIENT),
    ],
)
def test_hub_answers_are_classified_and_keep_the_hubs_words(status: int, token: str | None, kind: HubErrorKind) -> None:
    headers = {"X-Error-Code": "GatedRepo", "X-Error-Message": f"no access (token {TOKEN})"}
    error = HubClient("http://hub.invalid", token)._error(status, headers, "http://hub.invalid/org/m/resolve/x/y")
    assert error.kind is kind and error.status == status and error.code == "GatedRepo"
    assert f"the Hub answered {status} GatedRepo for /org/m/resolve/x/y: no access" in error.message
    assert (TOKEN in error.message) is (token is None)  # the client's own token is scrubbed


def test_a_redirect_to_another_host_drops_the_token() -> None:
    request = urllib.request.Request("https://hub.example/org/m/resolve/c/w.bin")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    handler = hub._SameHostAuth()
    elsewhere = handler.redirect_request(request, None, 302, "Found", {}, "https://cdn.example/signed")  # type: ignore[arg-type]
    same = handler.redirect_request(request, None, 302, "Found", {}, "https://hub.example/org/m/resolve/c/x")  # type: ignore[arg-type]
    assert elsewhere is not None and not elsewhere.has_header("Authorization")
    assert same is not None and same.get_header("Authorization") == f"Bearer {TOKEN}"
