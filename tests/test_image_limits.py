"""Frame bombs and decoded-size limits on input images (handler/image_bytes.py, input_files.load_images):
ComfyUI's LoadImage converts every frame of a file to float32, so frames, pixels per frame and the bytes it
would hold are bounded before ComfyUI sees the file."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image

from handler.config import Settings
from handler.errors import InputError
from handler.image_bytes import DECODED_BYTES_PER_PIXEL, check_image_bytes
from handler.input_files import load_images, parse_images
from handler.url_fetch import FetchLimits
from image_server import frame_bomb_gif, gif_bytes, png_bytes


def check(data: bytes, **limits):
    return check_image_bytes(data, field="images[0].image", value="<gif>", **limits)


def test_the_frame_bomb_is_refused_quickly_and_without_decoding_its_frames():
    bomb = frame_bomb_gif(2000, 4000, 4000)  # ~46 KB; LoadImage would want 2000 x 4000 x 4000 x 16 bytes
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        check(bomb)
    assert time.perf_counter() - started < 2
    assert caught.value.field == "images[0].image" and "at most 4 frame(s) (got 2000)" in caught.value.rule


def test_frames_up_to_the_limit_pass_and_are_counted():
    info = check(gif_bytes(3, 10, 6), max_frames=3)
    assert (info.format, info.frames, info.width, info.height) == ("GIF", 3, 10, 6)
    assert info.decoded_bytes == 3 * 10 * 6 * DECODED_BYTES_PER_PIXEL
    with pytest.raises(InputError) as caught:
        check(gif_bytes(4, 10, 6), max_frames=3)
    assert "got 4" in caught.value.rule


def test_few_frames_of_a_large_canvas_are_bounded_by_decoded_bytes():
    with pytest.raises(InputError) as caught:
        check(frame_bomb_gif(4, 4000, 4000), max_decoded_bytes=512 * 1024**2)  # 4 x 16 M pixels x 16 B = 1 GiB
    assert "once loaded" in caught.value.rule and str(512 * 1024**2) in caught.value.rule


def test_each_page_of_a_multi_page_tiff_is_measured():
    buf = io.BytesIO()
    small, big = Image.new("RGB", (8, 8)), Image.new("RGB", (100, 100))
    small.save(buf, format="TIFF", save_all=True, append_images=[big])
    with pytest.raises(InputError) as caught:
        check(buf.getvalue(), max_pixels=1000)
    assert "frame 1 is 100x100" in caught.value.rule


def test_all_of_a_jobs_images_together_are_bounded():
    one = gif_bytes(2, 64, 64)  # 2 x 64 x 64 x 16 = 131072 bytes once loaded
    specs = parse_images([{"name": f"{i}.gif", "image": base64.b64encode(one).decode()} for i in range(3)])
    limits = FetchLimits(max_decoded_bytes=2 * 131072)
    with pytest.raises(InputError) as caught:
        load_images(specs, limits=limits)
    assert caught.value.field == "images[2].image" and "together" in caught.value.rule
    assert len(load_images(specs[:2], limits=limits)) == 2


def test_a_still_image_is_one_frame():
    info = check(png_bytes(5, 4))
    assert info.frames == 1 and info.decoded_bytes == 5 * 4 * DECODED_BYTES_PER_PIXEL


def test_the_limits_come_from_the_input_limits_settings():
    limits = Settings.from_env({"INPUT_IMAGE_MAX_FRAMES": "8", "INPUT_IMAGE_MAX_DECODED_BYTES": "1000000"}).input_limits
    assert (limits.max_frames, limits.max_decoded_bytes) == (8, 1_000_000)
    assert (FetchLimits().max_frames, FetchLimits().max_decoded_bytes) == (4, 2 * 1024**3)


@pytest.mark.parametrize("orientation,size", [(1, (40, 20)), (3, (40, 20)), (6, (20, 40)), (8, (20, 40))])
def test_a_phone_photo_is_measured_upright_as_loadimage_turns_it(orientation, size):
    """A JPEG stored 40x20 with EXIF orientation 6 is a 20x40 picture to ComfyUI's LoadImage (exif_transpose):
    the size limits and the graph's size estimates must see what LoadImage makes."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), (10, 20, 30)).save(buf, format="JPEG", exif=exif)
    info = check_image_bytes(buf.getvalue(), field="images[0].image", value="x")
    assert (info.width, info.height) == size
