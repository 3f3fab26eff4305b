"""The response-size guard: exact measurement, early refusal only when certain, and the error a caller reads."""

from __future__ import annotations

import base64
import json

import pytest

from handler.errors import PayloadTooLargeError
from handler.payload import (
    base64_size,
    check_inline,
    estimate,
    fits_inline,
    png_metadata_bytes,
    preflight,
    response_size,
)


def test_base64_size_matches_the_encoder():
    for n in (0, 1, 2, 3, 4, 1000, 12345):
        assert base64_size(n) == len(base64.b64encode(b"x" * n))


def test_response_size_is_what_the_sdk_posts():
    response = {"status": "success", "prompt": "café ☕", "images": [{"image_base64": "QUJD"}]}
    expected = len(json.dumps({"output": response}, ensure_ascii=False).encode("utf-8"))
    assert response_size(response) == expected


def test_small_response_fits():
    ok, size = fits_inline({"images": ["x" * 1000]}, limit=10_000_000)
    assert ok and 1000 < size < 1100
    assert check_inline({"images": ["x" * 1000]}, 10_000_000, bucket_configured=False) == size


def test_oversize_without_bucket_names_size_limit_and_fixes():
    response = {"images": [{"image_base64": "A" * 12_000_000}]}
    with pytest.raises(PayloadTooLargeError) as err:
        check_inline(response, 10_000_000, bucket_configured=False)
    msg = err.value.message
    assert "12.0 MB" in msg and "10.0 MB" in msg
    assert "BUCKET_NAME" in msg and "jpeg" in msg and "MAX_RESPONSE_BYTES" in msg
    assert err.value.details["limit_bytes"] == 10_000_000
    assert err.value.details["size_bytes"] > 12_000_000
    assert err.value.to_response()["details"]["type"] == "payload_too_large"


def test_oversize_with_bucket_is_left_to_the_uploader():
    response = {"images": [{"image_base64": "A" * 12_000_000}]}
    size = check_inline(response, 10_000_000, bucket_configured=True)
    assert size > 10_000_000
    assert fits_inline(response, 10_000_000)[0] is False


def test_a_response_just_under_the_limit_but_within_the_envelope_margin_does_not_fit():
    response = {"d": "A" * (10_000_000 - 100)}
    assert fits_inline(response, 10_000_000)[0] is False


def test_preflight_never_refuses_plain_images_it_cannot_be_sure_about(caplog):
    # 4 copies of 2048x2048 PNG would typically be ~36 MB: likely too large, but not certain -> warn only.
    p = preflight(files=5, width=2048, height=2048, output_format="png", limit=10_000_000, bucket_configured=False)
    assert p.likely_too_large and not p.certainly_too_large
    assert "likely exceed" in caplog.text


def test_preflight_refuses_when_embedded_png_metadata_alone_is_too_big():
    # A 3 MB GUI workflow is written into every PNG ComfyUI saves: 5 copies cannot fit 10 MB in base64.
    meta = png_metadata_bytes({"1": {"class_type": "X", "inputs": {}}}, {"workflow": {"blob": "w" * 3_000_000}})
    with pytest.raises(PayloadTooLargeError) as err:
        preflight(files=5, width=832, height=1536, output_format="png", limit=10_000_000, bucket_configured=False,
                  png_metadata_bytes=meta)
    assert "at least" in err.value.message and err.value.details["checked"] == "before running"


def test_preflight_with_bucket_refuses_nothing():
    meta = 50_000_000
    p = preflight(files=5, width=832, height=1536, output_format="png", limit=10_000_000, bucket_configured=True,
                  png_metadata_bytes=meta)
    assert p.certainly_too_large


def test_lossy_formats_have_no_metadata_floor():
    p = estimate(files=5, width=832, height=1536, output_format="jpeg", limit=10_000_000, png_metadata_bytes=10**8)
    assert not p.certainly_too_large


def test_png_metadata_bytes_counts_prompt_and_extra_info():
    prompt = {"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}
    extra = {"workflow": {"nodes": []}}
    assert png_metadata_bytes(prompt, extra) >= len(json.dumps(prompt)) + len(json.dumps(extra["workflow"]))


def test_oversize_after_upload_says_what_is_left_to_shrink():
    response = {"outputs": [{"kind": "text", "data": "t" * 11_000_000}]}
    with pytest.raises(PayloadTooLargeError) as err:
        check_inline(response, 10_000_000, bucket_configured=True, uploaded=True)
    assert "text outputs" in err.value.message and "BUCKET_NAME" not in err.value.message


def test_response_size_counts_long_base64_exactly_without_dumping_it():
    import base64 as _b64
    import json as _json
    import os as _os

    blob = _b64.b64encode(_os.urandom(300_000)).decode()
    response = {"image": {"image_base64": blob, "width": 1}, "images": [{"image_base64": blob}],
                "outputs": [{"data": "é" * 5000}, {"data": 'q"uo\\te' * 2000}], "prompt": "ünïcode"}
    from handler.payload import response_size

    assert response_size(response) == len(_json.dumps({"output": response}, ensure_ascii=False).encode("utf-8"))
