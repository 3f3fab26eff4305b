"""Output encoding: PNG passes through byte for byte, jpeg/webp are re-encoded, consumed files are removed safely."""

import io

from PIL import Image

from handler import outputs
from handler.comfy_client import RunResult


def png(mode="RGB", size=(64, 32)):
    buffer = io.BytesIO()
    Image.new(mode, size, (10, 20, 30, 40)[: len(mode)]).save(buffer, format="PNG")
    return buffer.getvalue()


def test_png_is_returned_unchanged_so_comfyui_metadata_survives():
    data = png()
    encoded = outputs.encode_image(data, "png", 90)
    assert encoded.data == data and (encoded.width, encoded.height) == (64, 32)


def test_jpeg_and_webp_are_re_encoded_with_alpha_dropped_for_jpeg():
    for fmt, pil in (("jpeg", "JPEG"), ("webp", "WEBP")):
        encoded = outputs.encode_image(png("RGBA"), fmt, 75)
        with Image.open(io.BytesIO(encoded.data)) as image:
            assert image.format == pil and image.size == (64, 32)
    assert outputs.encode_image(png(), "jpeg", 90).to_json()["format"] == "jpeg"


def test_outputs_in_graph_order_and_previews_only_when_asked():
    result = RunResult("p", {
        "20": {"images": [{"filename": "b.png", "subfolder": "", "type": "output"}]},
        "3": {"images": [{"filename": "a.png", "subfolder": "s", "type": "output"}, {"filename": "t.png", "subfolder": "", "type": "temp"}]},
    })
    names = [r.filename for r in outputs.output_refs(result, ["3", "20"])]
    assert names == ["a.png", "b.png"]
    assert [r.filename for r in outputs.output_refs(result, ["3", "20"], include_temp=True)] == ["a.png", "t.png", "b.png"]


def test_remove_local_deletes_only_inside_the_output_folder(tmp_path):
    out = tmp_path / "out"
    (out / "job").mkdir(parents=True)
    inside = out / "job" / "a.png"
    inside.write_bytes(b"x")
    outside = tmp_path / "keep.png"
    outside.write_bytes(b"x")
    outputs.remove_local(out, outputs.SavedFile("9", "a.png", "job", "output"))
    outputs.remove_local(out, outputs.SavedFile("9", "keep.png", "..", "output"))
    assert not inside.exists() and outside.exists()


def test_core_images_sends_each_image_once_and_keeps_the_original_image_field():
    images = [outputs.EncodedImage(png(size=(8, 4)), 8, 4, "png").to_json(),
              outputs.EncodedImage(png(size=(8, 4)), 8, 4, "png").to_json()]
    core = outputs.core_images(images)
    assert core["image"] is images[0]  # the original diffusers contract: image.image_base64
    assert core["images"][0] == {"same_as": "image", "width": 8, "height": 4, "format": "png"}
    assert core["images"][1] is images[1]
    assert outputs.core_images([]) == {"image": None, "images": []}


def test_core_images_opt_out_gives_a_uniform_list_and_urls_are_left_alone():
    images = [outputs.EncodedImage(png(), 64, 32, "png").to_json()]
    assert outputs.core_images(images, legacy_image=False) == {"images": images}
    by_url = [{"url": "https://bucket/x.png", "width": 1, "height": 1, "format": "png"}]
    assert outputs.core_images(by_url) == {"image": by_url[0], "images": by_url}  # a URL is short: both keep it


def _photo_like(size=(96, 160)) -> Image.Image:
    import random

    rnd = random.Random(1)
    small = Image.frombytes("RGB", (6, 10), bytes(rnd.randrange(256) for _ in range(6 * 10 * 3)))
    return small.resize(size, Image.BICUBIC)  # smooth, compressible, every pixel different


def test_the_png_the_worker_encodes_is_lossless_at_every_compress_level():
    source = io.BytesIO()
    _photo_like().save(source, format="WEBP", lossless=True)  # a workflow's save node wrote webp
    with Image.open(io.BytesIO(source.getvalue())) as img:
        pixels = img.convert("RGB").tobytes()
    sizes = {}
    for level in range(10):
        encoded = outputs.encode_image(source.getvalue(), "png", 90, png_compress_level=level)
        with Image.open(io.BytesIO(encoded.data)) as back:
            assert back.format == "PNG" and back.convert("RGB").tobytes() == pixels, level
        sizes[level] = len(encoded.data)
    assert sizes[0] > sizes[1] >= sizes[9]  # only the bytes change


def test_collect_outputs_uses_the_configured_png_level(monkeypatch):
    seen = []
    real = outputs.encode_image
    monkeypatch.setattr(outputs, "encode_image", lambda *a, **k: seen.append(a[3:] or k) or real(*a, **k))
    result = RunResult("p", {"9": {"images": [{"filename": "a.webp", "subfolder": "", "type": "output"}]}})
    buffer = io.BytesIO()
    _photo_like().save(buffer, format="WEBP")

    class Client:
        def view(self, *a, **k):
            return buffer.getvalue()

    got = outputs.collect_outputs(Client(), result, ["9"], job_id="j", png_compress_level=7)
    assert seen == [(7,)] and got.images[0]["format"] == "png" and got.outputs[0]["filename"] == "a.png"


# ---- what a graph's outputs can do to the worker's memory and time -----------------------------------------

def _saved(name="big.bin"):
    return outputs.SavedFile("9", name, "", "output")


def test_an_output_larger_than_any_inline_response_is_refused_before_it_is_read(tmp_path):
    import pytest
    from handler.errors import PayloadTooLargeError

    (tmp_path / "big.bin").write_bytes(b"\0" * 5000)

    class NoView:
        def view(self, *a, **k):
            raise AssertionError("a local file is never fetched over /view")

    with pytest.raises(PayloadTooLargeError) as caught:
        outputs.fetch(NoView(), _saved(), tmp_path, max_bytes=4096)
    assert caught.value.details["size_bytes"] == 5000 and "BUCKET_NAME" in caught.value.message
    assert outputs.fetch(NoView(), _saved(), tmp_path, max_bytes=5000) == b"\0" * 5000
    assert outputs.read_limit(10_000_000, bucket=False) == 80_000_000  # a PNG asked for as jpeg may shrink 8x


def test_a_view_answer_is_cut_at_the_size_limit_and_the_job_deadline():
    import time

    import pytest
    from handler.comfy_client import ComfyClient
    from handler.errors import JobTimeoutError, PayloadTooLargeError
    from image_server import ImageServer, drip, send

    with ImageServer() as srv:
        srv.routes["/view"] = lambda h: send(h, b"\1" * (3 << 20), content_type="application/octet-stream")
        client = ComfyClient(srv.url(""), 5)
        with pytest.raises(PayloadTooLargeError) as caught:
            outputs.fetch(client, _saved(), None, max_bytes=1 << 20)
        assert 1 << 20 < caught.value.details["size_bytes"] <= 2 << 20  # stopped a chunk past the limit
        srv.routes["/view"] = drip(b"\1" * 1000, 0.05)  # each byte within a read timeout, the whole 50 s
        with pytest.raises(JobTimeoutError):  # without the deadline: the whole body, 50 s later
            outputs.fetch(client, _saved(), None, deadline=time.monotonic() + 0.5)


def test_an_image_output_that_pillow_cannot_read_is_output_unavailable_not_internal():
    import pytest
    from handler.errors import OutputUnavailableError

    with pytest.raises(OutputUnavailableError) as caught:
        outputs.encode_image(b"<html>not an image</html>", "png", 90)
    assert caught.value.details["exception_type"] == "UnidentifiedImageError"
