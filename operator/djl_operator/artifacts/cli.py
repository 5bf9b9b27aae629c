"""``djl-operator render`` and ``djl-operator package``.

``render -f endpoint.yaml -o DIR`` writes the artifact files, model.tar.gz
and requests.json (the SageMaker requests the operator would send), offline.
``package -f endpoint.yaml [--upload]`` builds model.tar.gz, prints its
sha256 and S3 key, and with ``--upload`` puts it in S3 with stock boto3
(``AWS_ENDPOINT_URL_S3``, ``AWS_PROFILE`` etc. are honoured).

Exit codes: 0 done, 2 the manifest or spec is wrong (the message names the
field), 1 anything else (S3 unreachable...).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from djl_operator import api
from djl_operator.artifacts.package import ARTIFACT_NAME, artifact_key, build_package
from djl_operator.desired import DesiredDeployment, desired_deployment
from djl_operator.errors import SpecError, field_path
from djl_operator.policy import Policy


@dataclass(frozen=True)
class Manifest:
    name: str
    namespace: str
    spec: api.DjlEndpointSpec
    # metadata.uid when the manifest came from the cluster (kubectl get -o yaml), else a placeholder.
    uid: str = ""


def load_manifest(text: str, *, namespace: str | None = None) -> Manifest:
    """Parse one DjlEndpoint manifest. Raises :class:`SpecError` naming the bad field."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise SpecError("manifest", f"not valid YAML: {exc}") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise SpecError("manifest", f"expected exactly one DjlEndpoint object, found {len(docs)} documents")
    body: dict[str, Any] = docs[0]
    expected_api = f"{api.GROUP}/{api.VERSION}"
    if body.get("apiVersion") != expected_api:
        raise SpecError("apiVersion", f"must be {expected_api}, not {body.get('apiVersion')!r}")
    if body.get("kind") != api.KIND:
        raise SpecError("kind", f"must be {api.KIND}, not {body.get('kind')!r}")
    meta = body.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not re.match(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", name):
        raise SpecError("metadata.name", f"must be a Kubernetes object name, not {name!r}")
    ns = namespace or (meta.get("namespace") if isinstance(meta, dict) else None) or "default"
    if not isinstance(body.get("spec"), dict):
        raise SpecError("spec", "is required and must be a mapping")
    try:
        spec = api.DjlEndpointSpec.model_validate(body["spec"])
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SpecError(field_path("spec", *first["loc"]), first["msg"]) from None
    uid = meta.get("uid") if isinstance(meta, dict) else None
    return Manifest(name=name, namespace=str(ns), spec=spec, uid=uid if isinstance(uid, str) and uid else OFFLINE_UID)


# Offline there is no Kubernetes object, so no uid for the owner tag.
OFFLINE_UID = "assigned-by-kubernetes"


def plan_requests(manifest: Manifest, template: Traversable | None = None) -> tuple[DesiredDeployment, dict[str, Any]]:
    """Exactly what the operator computes for this manifest, and its requests keyed by operation."""
    resource = api.DjlEndpointResource(
        name=manifest.name,
        namespace=manifest.namespace,
        uid=manifest.uid or OFFLINE_UID,
        generation=1,
        spec=manifest.spec,
        status=api.DjlEndpointStatus(),
    )
    # The policy the operator would apply (DJL_OPERATOR_POLICY_FILE), so the preview refuses what it refuses.
    desired = desired_deployment(resource, template, rules=Policy.from_env())
    return desired, {
        "CreateModel": desired.model_request,
        "CreateEndpointConfig": desired.config_request,
        "CreateEndpoint": desired.endpoint_request,
    }


def _read_manifest(path: str, namespace: str | None) -> Manifest:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return load_manifest(text, namespace=namespace)


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"djl-operator {prog}", description=description)
    parser.add_argument("-f", "--filename", required=True, help="DjlEndpoint manifest (YAML), '-' for stdin")
    parser.add_argument("-n", "--namespace", help="namespace (default: metadata.namespace, else 'default')")
    parser.add_argument(
        "--template", type=Path, help="model template directory to use instead of the shipped one (handler work)"
    )
    return parser


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def render_main(argv: list[str]) -> int:
    parser = _parser("render", "Render the artifact files and SageMaker requests of a DjlEndpoint, offline.")
    parser.add_argument("-o", "--output", required=True, help="directory to write into (created if missing)")
    args = parser.parse_args(argv)
    try:
        manifest = _read_manifest(args.filename, args.namespace)
        desired, planned = plan_requests(manifest, args.template)
        package, image_uri = desired.package, desired.image_uri
    except SpecError as exc:
        return _fail(str(exc), 2)
    except OSError as exc:
        return _fail(str(exc), 2)
    out = Path(args.output)
    for rel, content in package.files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    (out / ARTIFACT_NAME).write_bytes(package.data)
    (out / "requests.json").write_text(json.dumps(planned, indent=2) + "\n", encoding="utf-8")
    key = desired.artifact_key
    print(f"sha256: {package.sha256}")
    print(f"key:    {key}")
    print(f"image:  {image_uri}")
    print(f"wrote:  {', '.join([*package.files, ARTIFACT_NAME, 'requests.json'])} in {out}")
    return 0


def package_main(argv: list[str]) -> int:
    parser = _parser("package", "Build model.tar.gz for a DjlEndpoint; print its sha256 and S3 key.")
    parser.add_argument("--upload", action="store_true", help="upload it to spec.aws.artifactBucket")
    parser.add_argument("-o", "--output", help="also write model.tar.gz to this file")
    args = parser.parse_args(argv)
    try:
        manifest = _read_manifest(args.filename, args.namespace)
        package = build_package(manifest.spec, args.template)
    except (SpecError, OSError) as exc:
        return _fail(str(exc), 2)
    spec = manifest.spec
    key = artifact_key(spec.aws.artifact_prefix, manifest.namespace, manifest.name, manifest.uid, package.sha256)
    if args.output:
        Path(args.output).write_bytes(package.data)
    print(f"sha256: {package.sha256}")
    print(f"key:    {key}")
    if not args.upload:
        return 0

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from djl_operator.artifacts.upload import upload_package

    try:
        s3 = boto3.client("s3", region_name=spec.aws.region)
        result = upload_package(
            s3, spec, namespace=manifest.namespace, name=manifest.name, owner_uid=manifest.uid, package=package
        )
    except SpecError as exc:
        return _fail(str(exc), 2)
    except (ClientError, BotoCoreError) as exc:
        return _fail(f"upload failed: {exc}", 1)
    print(f"uri:    {result.uri} ({'uploaded' if result.uploaded else 'already present, not uploaded again'})")
    return 0
