"""`input.images`: shapes, names, encodings and limits a caller can send, and what reaches ComfyUI."""

from __future__ import annotations

import base64

import pytest

from handler.errors import InputError
from handler.input_files import parse_images, prepare_input_images
from handler.url_fetch import AddressPolicy, FetchLimits, UnsafeURLError, fetch_image
from image_server import ImageServer, jpeg_bytes, png_bytes, send


class FakeComfy:
    """Records uploads; stores each under the name given, as ComfyUI does with overwrite on."""

    def __init__(self):
        self.uploads: list[tuple[str, bytes]] = []
        self.subfolders: list[str] = []

    def upload_image(self, name: str, data: bytes, subfolder: str = "") -> str:
        self.uploads.append((name, data))
        self.subfolders.append(subfolder)
        return f"{subfolder}/{name}" if subfolder else name


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def prepare(images, **kw):
    client = FakeComfy()
    return prepare_input_images(images, client, **kw), client


# ---------------------------------------------------------------------------------------------------- accepted

def test_base64_data_uri_and_url_are_all_uploaded_under_their_names():
    png, jpg = png_bytes(), jpeg_bytes()
    with ImageServer() as srv:
        srv.routes["/c.png"] = lambda h: send(h, png)

        def loopback_fetch(url, **kw):
            return fetch_image(url, policy=AddressPolicy(allow_networks=("127.0.0.1/32",)), **kw)

        stored, client = prepare([
            {"name": "a.png", "image": b64(png)},
            {"name": "b.jpg", "image": "data:image/jpeg;base64," + b64(jpg)},
            {"name": "c.png", "image": srv.url("/c.png")},
        ], fetch=loopback_fetch)
    assert stored == {"a.png": "a.png", "b.jpg": "b.jpg", "c.png": "c.png"}
    assert client.uploads == [("a.png", png), ("b.jpg", jpg), ("c.png", png)]


def test_base64_with_line_breaks_and_without_padding_is_accepted():
    png = png_bytes(5, 3)
    text = b64(png).rstrip("=")
    wrapped = "\n".join(text[i:i + 76] for i in range(0, len(text), 76))
    stored, client = prepare([{"name": "wrapped.png", "image": wrapped}])
    assert client.uploads == [("wrapped.png", png)]


def test_urlsafe_base64_is_accepted():
    png = png_bytes(9, 9)
    stored, client = prepare([{"name": "u.png", "image": base64.urlsafe_b64encode(png).decode()}])
    assert client.uploads[0][1] == png


def test_missing_or_empty_images_uploads_nothing():
    assert prepare(None)[0] == {} and prepare([])[0] == {}


def test_returns_the_name_comfyui_stored():
    class Renaming(FakeComfy):
        def upload_image(self, name, data, subfolder=""):
            super().upload_image(name, data, subfolder)
            return "sub/" + name

    stored = prepare_input_images([{"name": "x.png", "image": b64(png_bytes())}], Renaming())
    assert stored == {"x.png": "sub/x.png"}


@pytest.mark.parametrize("name", ["photo.png", "IMG_0001.JPG", "my image (2).webp", "a-b_c.1.jpeg", "x.tiff",
                                  "photo@2x.png", "photo+1.png", "it's mine.png", "a,b&c!=#~.jpg"])
def test_good_names(name):
    assert parse_images([{"name": name, "image": b64(png_bytes())}])[0].name == name


# ---------------------------------------------------------------------------------------------------- names

@pytest.mark.parametrize("name, rule", [
    ("../etc/passwd.png", "without '/'"),
    ("..\\win.png", "without '/' or '\\'"),
    ("/abs/path.png", "without '/'"),
    ("sub/dir.png", "without '/'"),
    ("a..png", "must not contain '..'"),
    ("..png", "must not contain '..'"),
    (".hidden.png", "must start with a letter or digit"),
    ("nul\x00.png", "NUL"),
    ("new\nline.png", "only ASCII letters, digits"),
    ("ümlaut.png", "only ASCII letters, digits"),
    ("semi;colon.png", "only ASCII letters, digits"),
    ("x.png [output]", "only ASCII letters, digits"),
    ("script.py", "image extension"),
    ("noext", "image extension"),
    ("trailing.png ", "must not end with a space"),
    ("", "non-empty"),
    ("a" * 130 + ".png", "at most 128 characters"),
])
def test_bad_names_are_refused_not_rewritten(name, rule):
    with pytest.raises(InputError) as err:
        prepare([{"name": name, "image": b64(png_bytes())}])
    assert err.value.field == "images[0].name"
    assert rule in err.value.rule


def test_non_string_name_is_refused():
    with pytest.raises(InputError) as err:
        parse_images([{"name": 3, "image": "x"}])
    assert err.value.field == "images[0].name"


def test_duplicate_names_are_refused_case_insensitively():
    with pytest.raises(InputError) as err:
        prepare([{"name": "a.png", "image": b64(png_bytes())}, {"name": "A.PNG", "image": b64(png_bytes())}])
    assert err.value.field == "images[1].name"
    assert "unique" in err.value.rule and "images[0].name" in err.value.rule


# ---------------------------------------------------------------------------------------------------- shape

@pytest.mark.parametrize("value, field, rule", [
    ({"name": "a.png"}, "images", "must be a list"),
    ("a.png", "images", "must be a list"),
    (["a.png"], "images[0]", "must be an object"),
    ([{"name": "a.png"}], "images[0]", "image"),
    ([{"image": "abc"}], "images[0]", "name"),
    ([{"name": "a.png", "image": "abc", "subfolder": "x"}], "images[0]", "only the keys"),
    ([{"name": "a.png", "image": 12}], "images[0].image", "non-empty string"),
    ([{"name": "a.png", "image": ""}], "images[0].image", "non-empty string"),
])
def test_bad_shapes(value, field, rule):
    with pytest.raises(InputError) as err:
        prepare(value)
    assert err.value.field == field
    assert rule in err.value.rule


def test_too_many_images():
    with pytest.raises(InputError) as err:
        prepare([{"name": f"{i}.png", "image": "x"} for i in range(5)], max_images=4)
    assert err.value.field == "images" and "at most 4" in err.value.rule


# ---------------------------------------------------------------------------------------------------- content

def test_not_an_image_is_refused():
    with pytest.raises(InputError) as err:
        prepare([{"name": "a.png", "image": b64(b"just some text, not a picture")}])
    assert err.value.field == "images[0].image" and "must be an image" in err.value.rule


def test_truncated_image_is_refused():
    with pytest.raises(InputError) as err:
        prepare([{"name": "a.png", "image": b64(png_bytes(64, 64)[:-40])}])
    assert err.value.field == "images[0].image"


def test_invalid_base64_is_refused():
    with pytest.raises(InputError) as err:
        prepare([{"name": "a.png", "image": "not base64 at all!!"}])
    assert "base64" in err.value.rule


@pytest.mark.parametrize("value, rule", [
    ("data:text/plain;base64,aGVsbG8=", "media type 'text/plain'"),
    ("data:image/png,rawbytes", "base64 data URI"),
    ("file:///etc/passwd", "scheme 'file'"),
    ("ftp://example.com/a.png", "scheme 'ftp'"),
])
def test_other_encodings_and_schemes_are_refused(value, rule):
    with pytest.raises(InputError) as err:
        prepare([{"name": "a.png", "image": value}])
    assert rule in err.value.rule


def test_decoded_size_cap():
    big = png_bytes(200, 200)
    limits = FetchLimits(max_bytes=len(big) - 1)
    with pytest.raises(InputError) as err:
        prepare([{"name": "a.png", "image": b64(big)}], limits=limits)
    assert f"at most {len(big) - 1} bytes" in err.value.rule


def test_encoded_size_cap_refuses_before_decoding():
    limits = FetchLimits(max_bytes=1000)
    with pytest.raises(InputError) as err:
        parse_images([{"name": "a.png", "image": "A" * 10_000}], max_bytes=limits.max_bytes)
    assert "at most 1000 bytes" in err.value.rule


def test_url_to_private_address_is_refused_and_nothing_is_uploaded():
    client = FakeComfy()
    with pytest.raises(UnsafeURLError) as err:
        prepare_input_images([
            {"name": "ok.png", "image": b64(png_bytes())},
            {"name": "evil.png", "image": "http://169.254.169.254/latest/meta-data/iam"},
        ], client)
    assert err.value.field == "images[1].image"
    assert client.uploads == []


def test_a_bad_name_late_in_the_list_fails_before_any_url_is_fetched():
    fetched = []

    def fetch(url, **kw):
        fetched.append(url)
        raise AssertionError("must not fetch")

    with pytest.raises(InputError):
        prepare([{"name": "a.png", "image": "https://example.com/a.png"}, {"name": "../b.png", "image": "x"}],
                fetch=fetch)
    assert fetched == []


def test_a_url_pasted_with_a_leading_space_is_still_a_url():
    png = png_bytes()
    with ImageServer() as srv:
        srv.routes["/c.png"] = lambda h: send(h, png)

        def loopback_fetch(url, **kw):
            return fetch_image(url, policy=AddressPolicy(allow_networks=("127.0.0.1/32",)), **kw)

        stored, client = prepare([{"name": "c.png", "image": "  " + srv.url("/c.png") + "\n"}], fetch=loopback_fetch)
    assert client.uploads == [("c.png", png)]


def test_an_entry_that_is_not_an_object_is_shown_as_sent():
    """A caller who sent the base64 itself instead of {"name", "image"} sees the start of what they sent."""
    with pytest.raises(InputError) as err:
        parse_images(["iVBORw0KGgoAAAANSUhEUg"])
    assert "'iVBORw0KGgo" in err.value.message and "not a string" in err.value.rule
