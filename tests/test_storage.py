"""Bucket delivery against a real S3-compatible HTTP server on loopback (moto's server mode), no network."""

from __future__ import annotations

import pytest
import requests

from handler.config import BucketSettings, Settings
from handler.errors import ConfigError
from handler.storage import BucketStore, BucketUploadError, bucket_store

moto_server = pytest.importorskip("moto.server", reason="moto[server] (requirements-dev.txt) runs the local S3")

KEY_ID, SECRET = "test-key-id", "test-secret"


@pytest.fixture(scope="module")
def endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def settings(endpoint, name="outputs", **kw):
    base = dict(endpoint_url=endpoint, access_key_id=KEY_ID, secret_access_key=SECRET, name=name, region="us-east-1")
    base.update(kw)
    return BucketSettings(**base)


@pytest.fixture
def bucket(endpoint):
    s = settings(endpoint)
    store = BucketStore(s)
    store.client.create_bucket(Bucket=s.name)
    return store


def test_upload_returns_a_presigned_url_that_serves_the_bytes(bucket):
    stored = bucket.upload(b"\x89PNG fake bytes", job_id="job-1", filename="ComfyUI_00001_.png", content_type="image/png")
    assert stored.key == "job-1/ComfyUI_00001_.png"
    got = requests.get(stored.url, timeout=10)
    assert got.status_code == 200
    assert got.content == b"\x89PNG fake bytes"
    assert got.headers["Content-Type"] == "image/png"
    assert "X-Amz-Expires=3600" in stored.url


def test_prefix_and_ttl_are_applied(endpoint):
    s = settings(endpoint, name="prefixed", prefix="flux/outputs", presign_ttl_s=120)
    store = BucketStore(s)
    store.client.create_bucket(Bucket="prefixed")
    stored = store.upload(b"abc", job_id="j2", filename="clip.mp4", content_type="video/mp4")
    assert stored.key == "flux/outputs/j2/clip.mp4"
    assert "X-Amz-Expires=120" in stored.url
    listed = store.client.list_objects_v2(Bucket="prefixed")["Contents"]
    assert [o["Key"] for o in listed] == ["flux/outputs/j2/clip.mp4"]


def test_key_parts_cannot_escape_the_prefix(bucket):
    assert bucket.key_for("../../etc", "../passwd") == "etc/passwd"
    assert bucket.key_for("job 1", "a b.png") == "job_1/a_b.png"


def test_missing_bucket_is_a_clear_error(endpoint):
    store = BucketStore(settings(endpoint, name="does-not-exist"))
    with pytest.raises(BucketUploadError) as err:
        store.upload(b"x", job_id="j", filename="a.png", content_type="image/png")
    assert "does-not-exist" in err.value.message and "NoSuchBucket" in err.value.message
    assert SECRET not in err.value.message
    assert store.check() is not None


def test_unreachable_endpoint_is_a_clear_error():
    # Port 9 on loopback: nothing listens, connection refused at once.
    store = BucketStore(settings("http://127.0.0.1:9", name="b"), connect_timeout_s=2, read_timeout_s=2)
    with pytest.raises(BucketUploadError) as err:
        store.upload(b"x", job_id="j", filename="a.png", content_type="image/png")
    assert "'b'" in err.value.message


def test_check_is_none_for_a_reachable_bucket(bucket):
    assert bucket.check() is None


def test_configuration_from_env_and_guards(endpoint):
    env = {"BUCKET_ENDPOINT_URL": endpoint, "BUCKET_ACCESS_KEY_ID": KEY_ID, "BUCKET_SECRET_ACCESS_KEY": SECRET,
           "BUCKET_NAME": "outputs", "BUCKET_PREFIX": "/p/", "BUCKET_PRESIGN_TTL_S": "600"}
    store = bucket_store(Settings.from_env(env).bucket)
    assert store is not None and store.key_for("j", "f.png") == "p/j/f.png"
    assert bucket_store(Settings.from_env({}).bucket) is None
    with pytest.raises(ConfigError, match="7 days"):
        BucketStore(settings(endpoint, presign_ttl_s=8 * 24 * 3600))
    with pytest.raises(ConfigError, match="together"):
        BucketStore(settings(endpoint, secret_access_key=None))
