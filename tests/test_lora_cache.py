"""LoRAs by URL (handler/lora_cache.py) against a loopback HTTP server: cache hits, eviction, checks, atomicity."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image_server import ImageServer, send  # noqa: E402

from handler.errors import InputError  # noqa: E402
from handler.lora_cache import LoraCache, cache_name  # noqa: E402
from handler.url_fetch import AddressPolicy, FetchLimits, UnsafeURLError  # noqa: E402
from tools.standins import write_lora  # noqa: E402

LOOPBACK_OK = AddressPolicy(allow_networks=("127.0.0.1/32",))
FIELD = "loras[0].url"


@pytest.fixture(scope="module")
def lora_bytes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("src")
    out = {}
    for fmt in ("kohya", "comfy", "sdxl"):
        write_lora(folder / fmt, fmt)
        out[fmt] = (folder / fmt).read_bytes()
    return out


@pytest.fixture
def server(lora_bytes):
    with ImageServer() as srv:
        for fmt, body in lora_bytes.items():
            srv.routes[f"/{fmt}.safetensors"] = lambda h, b=body: send(h, b, content_type="application/octet-stream")
        yield srv


def make_cache(folder: Path, cache_bytes: int = 10_000_000, fetch_bytes: int = 5_000_000) -> LoraCache:
    return LoraCache(folder, cache_bytes, FetchLimits(max_bytes=fetch_bytes), https_only=False, policy=LOOPBACK_OK)


def test_a_download_is_stored_under_its_url_and_reused(tmp_path, server, lora_bytes):
    cache = make_cache(tmp_path)
    url = server.url("/kohya.safetensors")
    first = cache.get(url, field=FIELD)
    assert not first.hit and first.path.read_bytes() == lora_bytes["kohya"]
    assert first.path.name == cache_name(url, None) and first.path.parent == tmp_path
    second = cache.get(url, field=FIELD)
    assert second.hit and second.path == first.path
    assert server.paths_requested() == ["/kohya.safetensors"]  # the hit made no request
    assert loras_in(tmp_path) == [first.path.name]  # no temporary file left behind


def loras_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".sha256"))


def test_a_sha256_checks_the_file_but_never_finds_another_urls_file(tmp_path, server, lora_bytes):
    digest = hashlib.sha256(lora_bytes["comfy"]).hexdigest()
    got = make_cache(tmp_path).get(server.url("/comfy.safetensors"), field=FIELD, sha256=digest)
    assert got.path.name == cache_name(server.url("/comfy.safetensors"))
    # Another URL with the same digest is not a hit: it is fetched from its own URL (here: 404), so a caller who
    # knows only the digest of someone's private LoRA cannot get it.
    with pytest.raises(InputError):
        make_cache(tmp_path).get(server.url("/elsewhere"), field=FIELD, sha256=digest)
    assert "/elsewhere" in server.paths_requested()
    # The same URL with the digest hits, checked against the digest stored at download; a wrong digest is refused.
    assert make_cache(tmp_path).get(server.url("/comfy.safetensors"), field=FIELD, sha256=digest).hit
    with pytest.raises(InputError, match="sha256 is " + "1" * 64):
        make_cache(tmp_path).get(server.url("/comfy.safetensors"), field=FIELD, sha256="1" * 64)


def test_a_download_stops_at_the_jobs_allowance_and_partials_count_against_the_bound(tmp_path, server, lora_bytes):
    size = len(lora_bytes["kohya"])
    with pytest.raises(InputError, match=f"at most {size - 1} bytes"):
        make_cache(tmp_path).get(server.url("/kohya.safetensors"), field=FIELD, max_bytes=size - 1)
    with pytest.raises(InputError, match="LORA_JOB_MAX_BYTES"):
        make_cache(tmp_path).get(server.url("/kohya.safetensors"), field=FIELD, max_bytes=0)
    # Another worker's download in progress takes room: what is left of the bound is this download's cap.
    (tmp_path / ".other.9.aa.partial").write_bytes(b"x" * (3 * size))
    with pytest.raises(InputError, match=f"at most {size - 1} bytes"):
        make_cache(tmp_path, cache_bytes=4 * size - 1).get(server.url("/kohya.safetensors"), field=FIELD)
    assert loras_in(tmp_path) == [".other.9.aa.partial"]


def test_a_checksum_mismatch_is_refused_and_nothing_is_kept(tmp_path, server):
    with pytest.raises(InputError) as err:
        make_cache(tmp_path).get(server.url("/kohya.safetensors"), field=FIELD, sha256="0" * 64)
    assert err.value.field == FIELD and "sha256 is " + "0" * 64 in err.value.rule
    assert list(tmp_path.iterdir()) == []


def test_a_file_over_the_size_cap_is_refused(tmp_path, server, lora_bytes):
    with pytest.raises(InputError, match="at most 1000 bytes"):
        make_cache(tmp_path, fetch_bytes=1000).get(server.url("/kohya.safetensors"), field=FIELD)
    # no Content-Length: the cap holds while streaming
    server.routes["/stream"] = lambda h: (h.send_response(200), h.send_header("Connection", "close"), h.end_headers(),
                                          h.wfile.write(lora_bytes["kohya"]))
    with pytest.raises(InputError, match="download exceeded it"):
        make_cache(tmp_path, fetch_bytes=1000).get(server.url("/stream"), field=FIELD)
    assert list(tmp_path.iterdir()) == []


def test_a_file_bigger_than_the_whole_cache_is_refused(tmp_path, server):
    with pytest.raises(InputError, match="at most 100 bytes"):
        make_cache(tmp_path, cache_bytes=100).get(server.url("/kohya.safetensors"), field=FIELD)


def test_a_file_that_is_not_safetensors_is_refused(tmp_path, server):
    server.routes["/page"] = lambda h: send(h, b"<html>login</html>" * 10, content_type="text/html")
    with pytest.raises(InputError) as err:
        make_cache(tmp_path).get(server.url("/page"), field=FIELD)
    assert "must be a FLUX LoRA in safetensors format" in err.value.rule and "not a safetensors file" in err.value.rule
    assert list(tmp_path.iterdir()) == []


def test_a_lora_for_another_model_is_refused_before_it_is_cached(tmp_path, server):
    with pytest.raises(InputError, match="is for another model"):
        make_cache(tmp_path).get(server.url("/sdxl.safetensors"), field=FIELD)
    assert list(tmp_path.iterdir()) == []


def test_plain_http_is_refused_by_default(tmp_path, server):
    cache = LoraCache(tmp_path, 10_000_000, FetchLimits(), policy=LOOPBACK_OK)
    with pytest.raises(UnsafeURLError, match="must use https, not 'http'"):
        cache.get(server.url("/kohya.safetensors"), field=FIELD)
    assert server.paths_requested() == []


def test_the_address_guard_applies(tmp_path, server):
    cache = LoraCache(tmp_path, 10_000_000, FetchLimits(), https_only=False)  # the real policy: loopback refused
    with pytest.raises(UnsafeURLError):
        cache.get(server.url("/kohya.safetensors"), field=FIELD)
    assert server.paths_requested() == []


def test_least_recently_used_files_are_evicted_to_fit_the_bound(tmp_path, server, lora_bytes):
    size = len(lora_bytes["kohya"])
    cache = make_cache(tmp_path, cache_bytes=int(size * 2.5))
    a = cache.get(server.url("/kohya.safetensors"), field=FIELD).path
    os.utime(a, (1000, 1000))
    server.routes["/b"] = server.routes["/kohya.safetensors"]
    server.routes["/c"] = server.routes["/kohya.safetensors"]
    b = cache.get(server.url("/b"), field=FIELD).path
    os.utime(b, (2000, 2000))
    assert cache.get(server.url("/kohya.safetensors"), field=FIELD).hit  # a is used again: now the newest
    c = cache.get(server.url("/c"), field=FIELD).path
    assert loras_in(tmp_path) == sorted([a.name, c.name])  # b, least recently used, went
    assert not b.exists()


def test_stale_partial_files_of_a_dead_worker_are_removed_and_fresh_ones_kept(tmp_path, server):
    stale, fresh = tmp_path / ".x.1.aa.partial", tmp_path / ".y.2.bb.partial"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(stale, (0, 0))
    make_cache(tmp_path).get(server.url("/kohya.safetensors"), field=FIELD)
    assert not stale.exists() and fresh.exists()


def test_a_concurrent_writer_of_the_same_file_never_exposes_a_partial_file(tmp_path, server, lora_bytes):
    """Each writer streams into its own temporary name; the final name appears only complete (os.replace)."""
    cache = make_cache(tmp_path)
    url = server.url("/kohya.safetensors")
    final = tmp_path / cache_name(url, None)
    seen = []
    original = os.replace

    def spy(src, dst):
        seen.append((Path(src).name, final.exists()))
        return original(src, dst)

    import handler.lora_cache as module
    module.os.replace = spy
    try:
        cache.get(url, field=FIELD)
    finally:
        module.os.replace = original
    (tmp_name, existed), = seen
    assert tmp_name.endswith(".partial") and tmp_name != final.name and not existed
    assert final.read_bytes() == lora_bytes["kohya"]
