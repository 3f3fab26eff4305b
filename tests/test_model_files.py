"""models.txt parsing, checksum verification, skip logic and error mapping.

Hugging Face cannot be reached from the test machines, so hf_hub_download is
replaced by a local fake that writes bytes the way the real one does (into
local_dir, returning the path). Hashing is real.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
from huggingface_hub import errors as hf_errors

from handler import model_files as mf

REPO_ROOT = Path(__file__).resolve().parent.parent

CONTENT = b"weights-" * 1000
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()
OTHER = b"something else entirely"


def _http_error(cls, status: int, message: str = "error"):
    """A real huggingface_hub HTTP error carrying a response with ``status``."""
    try:
        import httpx2 as httpx  # what huggingface_hub 2.x uses
    except ImportError:  # pragma: no cover - older huggingface_hub
        import httpx
    request = httpx.Request("GET", "https://huggingface.co/o/r/resolve/main/f")
    return cls(message, response=httpx.Response(status, request=request))


def _entry(folder="vae", repo="o/r", path="sub/f.safetensors", sha=CONTENT_SHA, rev=None):
    return mf.ModelFile(folder, repo, path, sha, rev, line_no=7)


class FakeHub:
    """Stands in for hf_hub_download: records calls, writes or raises."""

    def __init__(self, content: bytes = CONTENT, error: Exception | None = None):
        self.content = content
        self.error = error
        self.calls: list[dict] = []

    def __call__(self, *, repo_id, filename, revision, local_dir, token, endpoint=None):
        self.calls.append(dict(repo_id=repo_id, filename=filename, revision=revision,
                               local_dir=Path(local_dir), token=token))
        if self.error is not None:
            raise self.error
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(self.content)
        return str(out)


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub()
    monkeypatch.setattr(mf, "hf_hub_download", fake)
    return fake


# ----------------------------------------------------------------- parsing --


def test_repo_manifest_lists_the_production_files():
    entries = mf.load_manifest(REPO_ROOT / "models.txt")
    assert [e.rel_path for e in entries] == [
        "diffusion_models/flux1-dev-fp8-e4m3fn.safetensors",
        "text_encoders/t5xxl_fp8_e4m3fn.safetensors",
        "text_encoders/clip_l.safetensors",
        "vae/ae.safetensors",
    ]
    by_name = {e.filename: e for e in entries}
    assert by_name["ae.safetensors"].repo == "black-forest-labs/FLUX.1-dev"
    assert by_name["clip_l.safetensors"].sha256 == (
        "660c6f5b1abae9dc498ac2d21e1347d2abdb0cf6c0c0c8576cd796491d9a6cdd"
    )
    assert all(e.revision and len(e.revision) == 40 for e in entries)


def test_repo_manifest_names_every_model_file_the_workflow_loads():
    api = json.loads((REPO_ROOT / "workflows" / "flux1-dev-t2i.api.json").read_text())
    wanted = set()
    for node in api.values():
        for key, value in node.get("inputs", {}).items():
            if isinstance(value, str) and value.endswith(".safetensors"):
                wanted.add(value)
    listed = {e.filename for e in mf.load_manifest(REPO_ROOT / "models.txt")}
    assert wanted, "the workflow should load model files"
    assert wanted <= listed


def test_parse_skips_comments_and_blank_lines_and_reads_revision():
    text = (
        "# header\n"
        "\n"
        f"vae o/r ae.safetensors {CONTENT_SHA}   # trailing comment\n"
        f"  loras o/r2 dir/x.safetensors {CONTENT_SHA} {'a' * 40}\n"
    )
    first, second = mf.parse_manifest(text)
    assert (first.folder, first.repo, first.path, first.revision, first.line_no) == (
        "vae", "o/r", "ae.safetensors", None, 3)
    assert second.revision == "a" * 40
    assert second.filename == "x.safetensors"
    assert second.destination(Path("/m")) == Path("/m/loras/x.safetensors")


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("vae o/r ae.safetensors", "expected 4 or 5 fields"),
        (f"vae o/r ae.safetensors {CONTENT_SHA} {'a' * 40} extra", "got 6"),
        (f"models o/r ae.safetensors {CONTENT_SHA}", "folder 'models' is not a ComfyUI model folder"),
        (f"vae not-a-repo ae.safetensors {CONTENT_SHA}", "repo 'not-a-repo'"),
        ("vae o/r ae.safetensors 1234", "sha256 '1234' must be 64 lowercase hexadecimal"),
        (f"vae o/r ae.safetensors {CONTENT_SHA.upper()}", "must be 64 lowercase hexadecimal"),
        (f"vae o/r ae.safetensors {CONTENT_SHA} main", "revision 'main' must be a full 40-character"),
        (f"vae o/r ../../etc/passwd {CONTENT_SHA}", "must be a relative path"),
        (f"vae o/r /abs/ae.safetensors {CONTENT_SHA}", "must be a relative path"),
    ],
)
def test_parse_rejects_bad_line_with_its_line_number(line, fragment):
    text = f"# ok\nvae o/r good.safetensors {CONTENT_SHA}\n{line}\n"
    with pytest.raises(mf.ManifestError) as info:
        mf.parse_manifest(text, source="m.txt")
    assert info.value.line_no == 3
    assert str(info.value).startswith("m.txt:3: ")
    assert fragment in str(info.value)


def test_parse_rejects_duplicate_destination():
    text = (f"vae o/r a/ae.safetensors {CONTENT_SHA}\n"
            f"vae o/other b/ae.safetensors {CONTENT_SHA}\n")
    with pytest.raises(mf.ManifestError, match=r"2: vae/ae.safetensors is already listed on line 1"):
        mf.parse_manifest(text)


def test_select_filters_by_folder_and_rejects_unknown():
    entries = [_entry(folder="vae"), _entry(folder="loras")]
    assert [e.folder for e in mf.select(entries, ["loras"])] == ["loras"]
    assert mf.select(entries, []) == entries
    with pytest.raises(mf.ModelFilesError, match="unknown folder"):
        mf.select(entries, ["nope"])


# ----------------------------------------------------------------- hashing --


def test_sha256_file_matches_hashlib_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(mf, "_HASH_CHUNK", 7)  # force many chunks
    f = tmp_path / "f.bin"
    f.write_bytes(CONTENT)
    assert mf.sha256_file(f) == CONTENT_SHA
    (tmp_path / "abc").write_bytes(b"abc")
    assert mf.sha256_file(tmp_path / "abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


# --------------------------------------------------- download, skip, verify --


def test_ensure_downloads_verifies_and_places_file(tmp_path, hub):
    entry = _entry(rev="b" * 40)
    assert mf.ensure([entry], tmp_path, token="tok") == []
    dest = tmp_path / "vae" / "f.safetensors"
    assert dest.read_bytes() == CONTENT
    (call,) = hub.calls
    assert (call["repo_id"], call["filename"], call["revision"], call["token"]) == (
        "o/r", "sub/f.safetensors", "b" * 40, "tok")
    assert not (tmp_path / mf._STAGING_DIR).exists(), "staging folder is cleaned up"


def test_ensure_skips_file_already_present_with_right_hash(tmp_path, hub):
    dest = tmp_path / "vae" / "f.safetensors"
    dest.parent.mkdir()
    dest.write_bytes(CONTENT)
    assert mf.ensure([_entry()], tmp_path) == []
    assert hub.calls == []


def test_ensure_replaces_present_file_with_wrong_hash(tmp_path, hub):
    dest = tmp_path / "vae" / "f.safetensors"
    dest.parent.mkdir()
    dest.write_bytes(OTHER)
    assert mf.ensure([_entry()], tmp_path) == []
    assert len(hub.calls) == 1
    assert dest.read_bytes() == CONTENT


def test_wrong_checksum_deletes_download_and_names_both_hashes(tmp_path, hub):
    hub.content = OTHER
    (failure,) = mf.ensure([_entry()], tmp_path)
    assert isinstance(failure, mf.ChecksumMismatchError)
    msg = str(failure)
    assert hashlib.sha256(OTHER).hexdigest() in msg and CONTENT_SHA in msg
    assert "line 7" in msg and "deleted" in msg
    assert not (tmp_path / "vae" / "f.safetensors").exists()
    assert not any(p.is_file() and p.read_bytes() == OTHER for p in tmp_path.rglob("*"))


def test_verify_reports_missing_and_corrupt_without_changing_anything(tmp_path):
    good, bad, missing = (_entry(path="good.bin"), _entry(path="bad.bin"),
                          _entry(path="missing.bin"))
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "good.bin").write_bytes(CONTENT)
    (tmp_path / "vae" / "bad.bin").write_bytes(OTHER)
    failures = mf.verify([good, bad, missing], tmp_path)
    assert [type(f) for f in failures] == [mf.ChecksumMismatchError, mf.LocalFileMissingError]
    assert "bad.bin" in str(failures[0]) and "vae/missing.bin is missing" in str(failures[1])
    assert (tmp_path / "vae" / "bad.bin").read_bytes() == OTHER


# ----------------------------------------------------------- error mapping --


def test_gated_repo_tells_user_to_accept_license_and_set_token(tmp_path, hub):
    hub.error = _http_error(hf_errors.GatedRepoError, 403, "Access to model is restricted")
    entry = _entry(repo="black-forest-labs/FLUX.1-dev", path="ae.safetensors")
    (failure,) = mf.ensure([entry], tmp_path)
    assert isinstance(failure, mf.AccessDeniedError)
    msg = str(failure)
    assert "accept the license at https://huggingface.co/black-forest-labs/FLUX.1-dev" in msg
    assert "HF_TOKEN" in msg and "403" in msg


@pytest.mark.parametrize("status", [401, 403])
def test_plain_http_401_403_is_access_denied(tmp_path, hub, status):
    hub.error = _http_error(hf_errors.HfHubHTTPError, status)
    (failure,) = mf.ensure([_entry()], tmp_path)
    assert isinstance(failure, mf.AccessDeniedError)
    assert "accept the license at https://huggingface.co/o/r" in str(failure)


def test_missing_remote_file_names_file_repo_and_line(tmp_path, hub):
    hub.error = _http_error(hf_errors.RemoteEntryNotFoundError, 404, "Entry not found")
    (failure,) = mf.ensure([_entry(rev="c" * 40)], tmp_path)
    assert isinstance(failure, mf.RemoteFileMissingError)
    assert str(failure) == (
        f"file sub/f.safetensors does not exist in o/r at revision {'c' * 40} (models.txt line 7)")


def test_missing_repo_and_revision(tmp_path, hub):
    hub.error = _http_error(hf_errors.RepositoryNotFoundError, 404, "Repository not found")
    (failure,) = mf.ensure([_entry()], tmp_path)
    assert isinstance(failure, mf.RemoteFileMissingError)
    assert "repository o/r was not found or is private" in str(failure)
    hub.error = _http_error(hf_errors.RevisionNotFoundError, 404, "Revision not found")
    (failure,) = mf.ensure([_entry(rev="d" * 40)], tmp_path)
    assert f"revision {'d' * 40} does not exist in o/r" in str(failure)


def test_network_failure_is_a_download_error(tmp_path, hub):
    hub.error = hf_errors.LocalEntryNotFoundError("cannot reach the Hub")
    (failure,) = mf.ensure([_entry()], tmp_path)
    assert isinstance(failure, mf.DownloadError)
    assert "could not reach Hugging Face" in str(failure)


def test_one_failure_does_not_stop_the_other_files(tmp_path, monkeypatch):
    def fake(*, repo_id, filename, revision, local_dir, token, endpoint=None):
        if repo_id == "o/gated":
            raise _http_error(hf_errors.GatedRepoError, 403)
        out = Path(local_dir) / filename
        out.write_bytes(CONTENT)
        return str(out)

    monkeypatch.setattr(mf, "hf_hub_download", fake)
    failures = mf.ensure([_entry(repo="o/gated", path="a.bin"), _entry(path="b.bin")], tmp_path)
    assert [type(f) for f in failures] == [mf.AccessDeniedError]
    assert (tmp_path / "vae" / "b.bin").read_bytes() == CONTENT


# ------------------------------------------------------------------- token --


def test_token_comes_from_file_then_env(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN_FILE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "from-env")
    token_file = tmp_path / "tok"
    token_file.write_text("from-file\n")
    assert mf.resolve_token(token_file) == "from-file"
    assert mf.resolve_token(tmp_path / "absent") == "from-env"
    monkeypatch.setenv("HF_TOKEN_FILE", str(token_file))
    assert mf.resolve_token(None) == "from-file"
    monkeypatch.delenv("HF_TOKEN_FILE")
    monkeypatch.delenv("HF_TOKEN")
    assert mf.resolve_token(None) is None


def test_token_is_never_logged(tmp_path, hub, monkeypatch, caplog):
    secret = "hf_SECRETtoken123"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.delenv("HF_TOKEN_FILE", raising=False)
    manifest = tmp_path / "m.txt"
    manifest.write_text(f"vae o/r f.safetensors {CONTENT_SHA}\n")
    hub.error = _http_error(hf_errors.GatedRepoError, 403)
    with caplog.at_level(logging.DEBUG):
        rc = mf.main(["--models-dir", str(tmp_path / "models"), "--manifest", str(manifest)])
    assert rc == 1
    assert hub.calls[0]["token"] == secret
    assert secret not in caplog.text
    assert "accept the license" in caplog.text


# --------------------------------------------------------------------- CLI --


def test_cli_downloads_then_verify_only_passes(tmp_path, hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN_FILE", raising=False)
    manifest = tmp_path / "m.txt"
    manifest.write_text(f"vae o/r f.safetensors {CONTENT_SHA}\n"
                        f"loras o/r g.safetensors {CONTENT_SHA}\n")
    models = tmp_path / "models"
    base = ["--models-dir", str(models), "--manifest", str(manifest)]
    assert mf.main(base + ["--verify-only"]) == 1
    assert mf.main(base + ["--only", "vae"]) == 0
    assert [c["filename"] for c in hub.calls] == ["f.safetensors"]
    assert mf.main(base + ["--verify-only", "--only", "vae"]) == 0
    assert mf.main(base + ["--verify-only"]) == 1  # loras not downloaded yet
    assert hub.calls[0]["token"] is None


def test_cli_bad_manifest_exits_2_naming_the_line(tmp_path, caplog):
    manifest = tmp_path / "m.txt"
    manifest.write_text("# c\nvae o/r f.safetensors nothex\n")
    rc = mf.main(["--models-dir", str(tmp_path), "--manifest", str(manifest)])
    assert rc == 2
    assert f"{manifest}:2: sha256 'nothex'" in caplog.text


def test_cli_unknown_only_folder_exits_2(tmp_path, caplog):
    rc = mf.main(["--models-dir", str(tmp_path), "--manifest", str(REPO_ROOT / "models.txt"),
                  "--only", "vae,bogus", "--verify-only"])
    assert rc == 2
    assert "bogus" in caplog.text


# ------------------------------------- real huggingface_hub, local fake Hub --
#
# The fakes above replace hf_hub_download. These run the real one against a small HTTP server
# on loopback that answers like the Hub's resolve endpoint (headers, error codes), so the
# download into the staging folder, the move into place and the error mapping are exercised
# through huggingface_hub itself.

import http.server  # noqa: E402
import threading  # noqa: E402

COMMIT = "e" * 40


class _HubHandler(http.server.BaseHTTPRequestHandler):
    files: dict = {}          # (repo, path) -> bytes
    gated: set = set()        # repos that need "Authorization: Bearer good-token"
    auth_seen: list = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def _answer(self, with_body: bool):
        parts = self.path.split("?", 1)[0].lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            self.send_error(400)
            return
        repo, path = f"{parts[0]}/{parts[1]}", "/".join(parts[4:])
        auth = self.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        known_repos = {r for r, _ in self.files} | self.gated
        if repo not in known_repos:
            return self._error(401, "RepoNotFound", "Repository not found")
        if repo in self.gated and auth != "Bearer good-token":
            return self._error(403, "GatedRepo", "Access to this repo is restricted")
        body = self.files.get((repo, path))
        if body is None:
            return self._error(404, "EntryNotFound", "Entry not found")
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"%s"' % hashlib.sha256(body).hexdigest())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _error(self, status, code, message):
        payload = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def do_HEAD(self):
        self._answer(with_body=False)

    def do_GET(self):
        self._answer(with_body=True)


@pytest.fixture
def local_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    _HubHandler.files = {("o/public", "sub/w.safetensors"): CONTENT,
                         ("o/gated", "ae.safetensors"): CONTENT,
                         ("o/public", "bad.safetensors"): OTHER}
    _HubHandler.gated = {"o/gated"}
    _HubHandler.auth_seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()



def test_real_download_through_huggingface_hub(tmp_path, local_hub):
    entry = _entry(repo="o/public", path="sub/w.safetensors", rev=COMMIT)
    assert mf.ensure([entry], tmp_path / "models", endpoint=local_hub) == []
    dest = tmp_path / "models" / "vae" / "w.safetensors"
    assert dest.read_bytes() == CONTENT
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["vae"], "no staging left behind"
    # second run: present with the right hash, nothing requested from the Hub
    seen = len(_HubHandler.auth_seen)
    assert mf.ensure([entry], tmp_path / "models", endpoint=local_hub) == []
    assert len(_HubHandler.auth_seen) == seen


def test_real_gated_repo_denied_then_allowed_with_token(tmp_path, local_hub):
    entry = _entry(repo="o/gated", path="ae.safetensors")
    (failure,) = mf.ensure([entry], tmp_path, token="wrong", endpoint=local_hub)
    assert isinstance(failure, mf.AccessDeniedError)
    assert "accept the license at https://huggingface.co/o/gated" in str(failure)
    assert not (tmp_path / "vae" / "ae.safetensors").exists()
    assert mf.ensure([entry], tmp_path, token="good-token", endpoint=local_hub) == []
    assert "Bearer good-token" in _HubHandler.auth_seen
    assert (tmp_path / "vae" / "ae.safetensors").read_bytes() == CONTENT


def test_real_missing_file_repo_and_bad_checksum(tmp_path, local_hub):
    missing_file = _entry(repo="o/public", path="nope.safetensors")
    missing_repo = _entry(repo="o/absent", path="x.safetensors")
    corrupt = _entry(repo="o/public", path="bad.safetensors")  # serves OTHER, expects CONTENT
    failures = mf.ensure([missing_file, missing_repo, corrupt], tmp_path, endpoint=local_hub)
    assert [type(f) for f in failures] == [
        mf.RemoteFileMissingError, mf.RemoteFileMissingError, mf.ChecksumMismatchError]
    assert "file nope.safetensors does not exist in o/public" in str(failures[0])
    assert "repository o/absent was not found or is private" in str(failures[1])
    assert not (tmp_path / "vae" / "bad.safetensors").exists()
    assert not (tmp_path / mf._STAGING_DIR).exists()
