"""The response-size guard: exact measurement, early refusal only when certain, and the error a caller reads."""

from __future__ import annotations

import base64
import json

import pytest

from handler.errors import PayloadTooLargeError
from handler.payload import (
    RUN_LIMIT_BYTES as RUN_LIMIT,
    RUNSYNC_LIMIT_BYTES as RUNSYNC_LIMIT,
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


# ---- each image's bytes once (issue 10): the arithmetic of the response the worker now sends ----------------

def _response(blobs: list[bytes], legacy_image: bool = True) -> dict:
    from handler.outputs import EncodedImage, core_images

    images = [EncodedImage(b, 832, 1536, "png").to_json() for b in blobs]
    return {"status": "success", "prompt": "p", "model": "m", "seed": 1,
            **core_images(images, legacy_image=legacy_image),
            "outputs": [{"node_id": "11", "filename": f"f{i}.png", "kind": "image", "mime": "image/png",
                         "images_index": i} for i in range(len(blobs))],
            "timings": {"total_s": 1.0}}


def _noise_png(width=832, height=1536, seed=0) -> bytes:
    import io
    import random

    from PIL import Image

    raw = random.Random(seed).randbytes(width * height * 3)  # incompressible: the largest PNG of this size
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), raw).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def test_the_response_carries_each_images_bytes_once_and_is_measured_exactly():
    import os

    blobs = [os.urandom(300_000), os.urandom(200_000)]
    response = _response(blobs)
    exact = len(json.dumps({"output": response}, ensure_ascii=False).encode("utf-8"))
    assert response_size(response) == exact
    bytes_only = sum(base64_size(len(b)) for b in blobs)
    assert bytes_only < exact < bytes_only + 2000  # one copy of each, plus a small skeleton


def test_issue_10_num_images_2_refused_at_12_4_mb_now_fits_the_default_limit():
    import os

    # bench run: num_images=2 at 832x1536, stand-in weights, ~3.1 MB per PNG: 3 copies = 12.4 MB were refused.
    blobs = [os.urandom(3_100_000), os.urandom(3_100_000)]
    new = _response(blobs)
    old = {**new, "images": [new["image"], *new["images"][1:]]}  # the former shape: images[0] repeated `image`
    assert response_size(old) > 12_400_000 and not fits_inline(old, RUN_LIMIT)[0]
    assert response_size(new) == response_size(old) - base64_size(3_100_000) + len('"same_as": "image", ') - len(
        '"image_base64": "", ')
    assert fits_inline(new, RUN_LIMIT)[0]
    assert check_inline(new, RUN_LIMIT, bucket_configured=False) < 8_300_000


def test_worst_case_pngs_at_832x1536_fit_runsync_two_and_three_at_a_time():
    png_bytes = _noise_png()
    assert png_bytes.startswith(b"\x89PNG") and len(png_bytes) > 832 * 1536 * 3  # noise does not compress
    two, three = _response([png_bytes] * 2), _response([png_bytes] * 3)
    assert fits_inline(two, RUNSYNC_LIMIT)[0] and response_size(two) < 10_300_000
    assert fits_inline(three, RUNSYNC_LIMIT)[0]  # 4 copies (the former shape) were 20.5 MB: refused
    assert not fits_inline({**three, "images": [three["image"], *three["images"][1:]]}, RUNSYNC_LIMIT)[0]
    assert not fits_inline(_response([png_bytes] * 4), RUNSYNC_LIMIT)[0]  # 4 noise PNGs need a bucket


def test_preflight_for_num_images_2_at_832x1536_counts_two_copies_and_expects_a_fit():
    meta = png_metadata_bytes({"1": {"class_type": "X", "inputs": {"text": "t" * 500}}})
    p = preflight(files=2, width=832, height=1536, output_format="png", limit=RUNSYNC_LIMIT,
                  bucket_configured=False, png_metadata_bytes=meta)
    assert not p.certainly_too_large and not p.likely_too_large
    one = estimate(files=1, width=832, height=1536, output_format="png", limit=RUNSYNC_LIMIT, png_metadata_bytes=meta)
    assert p.lower_bound - 512 == 2 * (one.lower_bound - 512) and p.typical - 512 == 2 * (one.typical - 512)


def test_preflight_lower_bound_never_exceeds_the_real_response():
    # The refusal before running must be certain: its bound stays below what the worker then really sends.
    import os

    meta = 40_000
    blobs = [os.urandom(67 + meta)] * 3
    p = estimate(files=3, width=832, height=1536, output_format="png", limit=RUNSYNC_LIMIT, png_metadata_bytes=meta)
    assert p.lower_bound <= response_size(_response(blobs))
    assert p.lower_bound <= response_size(_response(blobs, legacy_image=False))


def test_legacy_image_false_costs_the_same_bytes():
    import os

    blobs = [os.urandom(100_000), os.urandom(100_000)]
    with_field, without = response_size(_response(blobs)), response_size(_response(blobs, legacy_image=False))
    assert abs(with_field - without) < 200
