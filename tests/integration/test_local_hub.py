"""The local Hugging Face Hub against the real ``huggingface_hub`` client (``HF_ENDPOINT``).

The client runs in a subprocess: it reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` when it is
imported, and the test session is offline on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from djl_operator_kit.hub import LocalHub, Synthetic

GOOD, OTHER = "hf_goodtokenAAAAAAAAAAAAAAAA", "hf_othertokenBBBBBBBBBBBBBBB"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub() as running:
        running.add_user("alice", GOOD)
        running.add_user("bob", OTHER)
        yield running


def _client(hub: LocalHub, tmp_path: Path, code: str) -> Any:
    """Run ``code`` (which sets ``result``) with huggingface_hub pointed at ``hub``; its JSON result."""
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HUB_OFFLINE": "0",
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    env.pop("HF_TOKEN", None)
    script = "import json, huggingface_hub as hf\nfrom huggingface_hub import errors\n" + code
    script += "\nprint('RESULT=' + json.dumps(result))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT="))
    return json.loads(line.removeprefix("RESULT="))


def test_snapshot_download_of_a_tiny_model_at_a_branch_a_tag_and_a_commit(
    hub: LocalHub, tiny_model_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    files = _files(tiny_model_dir("feature-extraction"))
    hub.add_repo("tiny/bert")
    first = hub.commit("tiny/bert", files, tags=("v1",))
    second = hub.commit("tiny/bert", {**files, "README.md": b"# second\n"})
    result = _client(
        hub,
        tmp_path,
        f"""
out = {{}}
for rev in ("main", "v1", "{first}"):
    info = hf.model_info("tiny/bert", revision=rev, files_metadata=True)
    path = hf.snapshot_download("tiny/bert", revision=rev, local_dir="{tmp_path}/dl-" + rev[:8])
    out[rev] = {{"sha": info.sha, "siblings": {{s.rfilename: s.size for s in info.siblings}}, "path": path}}
result = out
""",
    )
    assert result["main"]["sha"] == second
    assert result["v1"]["sha"] == result[first]["sha"] == first
    assert result["main"]["siblings"] == {**{k: len(v) for k, v in files.items()}, "README.md": 9}
    for rev, expected in (("main", {**files, "README.md": b"# second\n"}), ("v1", files), (first, files)):
        got = _files(Path(result[rev]["path"]))
        got = {k: v for k, v in got.items() if not k.startswith(".cache/")}
        assert got == expected, rev


def test_gated_repo_unknown_revision_and_tokens(hub: LocalHub, tmp_path: Path) -> None:
    hub.add_repo("org/gated", gated=True, granted=("alice",))
    hub.commit("org/gated", {"config.json": b'{"a": 1}', "model.safetensors": b"\x00" * 4096})
    result = _client(
        hub,
        tmp_path,
        f"""
def attempt(**kw):
    try:
        return {{"ok": open(hf.hf_hub_download("org/gated", "config.json", **kw)).read()}}
    except errors.HfHubHTTPError as e:
        return {{"error": type(e).__name__, "status": e.response.status_code,
                 "code": e.response.headers.get("X-Error-Code"), "message": e.response.headers.get("X-Error-Message")}}
result = {{
    "info": hf.model_info("org/gated").gated,
    "anonymous": attempt(),
    "other": attempt(token="{OTHER}"),
    "invalid": attempt(token="hf_nobodyknowsthisone"),
    "good": attempt(token="{GOOD}"),
    "revision": attempt(token="{GOOD}", revision="no-such-branch"),
    "lfs": hf.get_hf_file_metadata(hf.hf_hub_url("org/gated", "model.safetensors"), token="{GOOD}").size,
}}
""",
    )
    assert result["info"] == "manual"  # model info is public, as on the Hub; files are gated
    assert result["anonymous"]["error"] == "GatedRepoError"
    assert (result["anonymous"]["status"], result["anonymous"]["code"]) == (401, "GatedRepo")
    assert "Please log in" in result["anonymous"]["message"]
    assert (result["other"]["error"], result["other"]["status"]) == ("GatedRepoError", 403)
    assert "not in the authorized list" in result["other"]["message"]
    assert result["invalid"]["status"] == 401
    assert result["invalid"]["message"] == "Invalid credentials in Authorization header"
    assert result["good"] == {"ok": '{"a": 1}'}
    assert (result["revision"]["error"], result["revision"]["status"]) == ("RevisionNotFoundError", 404)
    assert result["lfs"] == 4096
    # The hub records who called, never the token.
    assert {c.user for c in hub.calls} >= {None, "alice", "bob", "<invalid>"}
    assert not any(GOOD in c.path or OTHER in c.path for c in hub.calls)


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_ranges_and_a_synthetic_multi_gigabyte_file(hub: LocalHub) -> None:
    big = Synthetic(3 * 2**30, seed=7)
    hub.add_repo("bench/big")
    sha = hub.commit("bench/big", {"weights.bin": big, "small.txt": b"0123456789"})
    base = f"{hub.url}/bench/big/resolve/main"
    status, headers, _ = _get(f"{base}/weights.bin", method="HEAD")
    assert status == 200 and int(headers["Content-Length"]) == 3 * 2**30
    assert headers["X-Repo-Commit"] == sha and headers["X-Linked-Size"] == str(3 * 2**30)
    assert headers["ETag"] == headers["X-Linked-Etag"]
    # A range across a block boundary deep inside the file: generated, deterministic.
    start = 2**31 + 2**20 - 5
    status, headers, body = _get(f"{base}/weights.bin", {"Range": f"bytes={start}-{start + 9}"})
    assert status == 206 and headers["Content-Range"] == f"bytes {start}-{start + 9}/{3 * 2**30}"
    assert body == b"".join(big.chunks(start, start + 10)) and len(body) == 10
    assert body[5:] == (2049).to_bytes(8, "big")[:5]  # block 2049 starts at byte 5: each block opens with its index
    assert _get(f"{base}/small.txt", {"Range": "bytes=-3"})[2] == b"789"
    status, headers, _ = _get(f"{base}/small.txt", {"Range": "bytes=10-"})
    assert status == 416 and headers["Content-Range"] == "bytes */10"
    status, headers, _ = _get(f"{hub.url}/bench/big/resolve/nope/small.txt")
    assert (status, headers["X-Error-Code"]) == (404, "RevisionNotFound")
    status, headers, _ = _get(f"{hub.url}/api/models/bench/missing")
    assert (status, headers["X-Error-Code"]) == (401, "RepoNotFound")
