"""The URL guard for input images: what it fetches, and every way it refuses.

"Fetch works" tests explicitly allow 127.0.0.1 (AddressPolicy(allow_networks=...)) because the only server a test
may reach is on loopback. Refusal tests use the real default policy; where they need a name that resolves to a
given address, the resolver is replaced (no real DNS is queried).
"""

from __future__ import annotations

import ipaddress
import logging
import time

import pytest

from handler.errors import InputError
from handler.url_fetch import (
    AddressPolicy,
    FetchLimits,
    UnsafeURLError,
    URLFetchError,
    address_refusal,
    fetch_image,
)
from image_server import (
    ImageServer,
    drip,
    png_bytes,
    jpeg_bytes,
    redirect,
    send,
    stall,
    stream_without_length,
)

LOOPBACK_OK = AddressPolicy(allow_networks=("127.0.0.1/32",))
FIELD = "images[0].image"


@pytest.fixture
def server():
    with ImageServer() as srv:
        yield srv


def fake_dns(table):
    """A resolver answering from `table` (host -> list of IPs); unknown names fail like NXDOMAIN."""
    calls = []

    def resolve(host, port, timeout_s):
        calls.append(host)
        if host not in table:
            raise OSError(f"Name or service not known: {host}")
        return table[host]

    resolve.calls = calls
    return resolve


# ---------------------------------------------------------------------------------------------------- fetch works

def test_fetches_png_and_reports_its_format(server):
    body = png_bytes(12, 7)
    server.routes["/a.png"] = lambda h: send(h, body)
    got = fetch_image(server.url("/a.png"), field=FIELD, policy=LOOPBACK_OK)
    assert got.data == body
    assert (got.info.format, got.info.width, got.info.height, got.info.mime) == ("PNG", 12, 7, "image/png")


def test_content_type_is_not_trusted_magic_bytes_decide(server):
    body = jpeg_bytes()
    server.routes["/photo"] = lambda h: send(h, body, content_type="text/html")
    assert fetch_image(server.url("/photo"), field=FIELD, policy=LOOPBACK_OK).info.format == "JPEG"


def test_follows_redirects_and_rechecks_each_hop(server):
    server.routes["/start"] = redirect("/middle", 301)
    server.routes["/middle"] = redirect(server.url("/end.png"), 307)
    server.routes["/end.png"] = lambda h: send(h, png_bytes())
    got = fetch_image(server.url("/start"), field=FIELD, policy=LOOPBACK_OK)
    assert got.final_url == server.url("/end.png")
    assert server.paths_requested() == ["/start", "/middle", "/end.png"]


def test_connects_to_the_vetted_address_and_keeps_the_host_name(server):
    """The name only exists in our fake DNS, so the request can only succeed by dialling the address we
    checked (pinning); the server must still see the caller's host name in Host."""
    server.routes["/p.png"] = lambda h: send(h, png_bytes())
    dns = fake_dns({"images.example.test": ["127.0.0.1"]})
    got = fetch_image(server.url("/p.png", host="images.example.test"), field=FIELD, policy=LOOPBACK_OK, resolver=dns)
    assert got.info.format == "PNG"
    assert server.requests[0]["host"] == f"images.example.test:{server.port}"
    assert dns.calls == ["images.example.test"]


# ---------------------------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("url, reason", [
    ("http://10.0.0.7/a.png", "private"),
    ("http://192.168.1.1/a.png", "private"),
    ("http://172.16.5.4/a.png", "private"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://169.254.1.1/a.png", "link-local"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://[fe80::1]/a.png", "link-local"),
    ("http://[fc00::5]/a.png", "private"),
    ("http://[::1]/a.png", "loopback"),
    ("http://100.64.1.1/a.png", "CGNAT"),
    ("http://0.0.0.0/a.png", "unspecified"),
    ("http://224.0.0.1/a.png", "multicast"),
    ("http://240.0.0.1/a.png", "reserved"),
    ("http://[::ffff:10.0.0.1]/a.png", "private"),
    ("http://[64:ff9b::a9fe:a9fe]/a.png", "cloud metadata"),  # NAT64 form of 169.254.169.254
    ("http://[2002:7f00:1::]/a.png", "loopback"),  # 6to4 form of 127.0.0.1
])
def test_refuses_non_public_literal_addresses(url, reason):
    with pytest.raises(UnsafeURLError) as err:
        fetch_image(url, field=FIELD)
    assert err.value.field == FIELD
    assert reason in err.value.rule
    assert "loopback, private, link-local or metadata" in err.value.message


def test_refuses_loopback_and_never_connects(server):
    server.routes["/a.png"] = lambda h: send(h, png_bytes())
    with pytest.raises(UnsafeURLError) as err:
        fetch_image(server.url("/a.png"), field=FIELD)  # real policy
    assert "loopback" in err.value.rule
    assert err.value.details["value"] == server.url("/a.png")
    assert server.requests == []


def test_refuses_localhost_by_name(server):
    with pytest.raises(UnsafeURLError):
        fetch_image(server.url("/a.png", host="localhost"), field=FIELD)
    assert server.requests == []


def test_refuses_a_name_that_resolves_to_a_private_address():
    dns = fake_dns({"innocent.example.test": ["10.1.2.3"]})
    with pytest.raises(UnsafeURLError) as err:
        fetch_image("https://innocent.example.test/cat.png", field=FIELD, resolver=dns)
    assert "10.1.2.3" in err.value.rule and "innocent.example.test" in err.value.rule


def test_refuses_a_name_with_any_private_address_among_public_ones():
    dns = fake_dns({"mixed.example.test": ["93.184.216.34", "2606:4700::1", "192.168.0.10"]})
    with pytest.raises(UnsafeURLError) as err:
        fetch_image("https://mixed.example.test/cat.png", field=FIELD, resolver=dns)
    assert "192.168.0.10" in err.value.rule


def test_refuses_a_redirect_to_a_private_address(server):
    server.routes["/go"] = redirect("http://10.20.30.40/internal.png")
    with pytest.raises(UnsafeURLError) as err:
        fetch_image(server.url("/go"), field=FIELD, policy=LOOPBACK_OK)
    assert "10.20.30.40" in err.value.rule
    assert err.value.details["value"] == server.url("/go")  # the caller's URL is named, with the hop in the rule


def test_refuses_a_redirect_to_metadata_by_name(server):
    server.routes["/go"] = redirect("http://metadata.google.internal/computeMetadata/v1/")
    dns = fake_dns({"metadata.google.internal": ["169.254.169.254"]})
    with pytest.raises(UnsafeURLError) as err:
        fetch_image(server.url("/go"), field=FIELD, policy=LOOPBACK_OK, resolver=dns)
    assert "cloud metadata" in err.value.rule


def test_refuses_a_redirect_to_a_file_url(server):
    server.routes["/go"] = redirect("file:///etc/passwd")
    with pytest.raises(UnsafeURLError) as err:
        fetch_image(server.url("/go"), field=FIELD, policy=LOOPBACK_OK)
    assert "'file'" in err.value.rule


def test_refuses_too_many_redirects(server):
    server.routes["/loop"] = redirect("/loop")
    with pytest.raises(UnsafeURLError) as err:
        fetch_image(server.url("/loop"), field=FIELD, policy=LOOPBACK_OK, limits=FetchLimits(max_redirects=3))
    assert "3 redirects" in err.value.rule
    assert len(server.requests) == 4


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/", "data:,x",
                                 "javascript:alert(1)", "//example.com/a.png", "example.com/a.png"])
def test_refuses_non_http_schemes(url):
    with pytest.raises(UnsafeURLError) as err:
        fetch_image(url, field=FIELD)
    assert "must use http or https" in err.value.rule


def test_refuses_oversize_by_content_length(server):
    server.routes["/big.png"] = lambda h: send(h, png_bytes(), content_length=50_000_000)
    with pytest.raises(URLFetchError) as err:
        fetch_image(server.url("/big.png"), field=FIELD, policy=LOOPBACK_OK, limits=FetchLimits(max_bytes=1_000_000))
    assert "at most 1000000 bytes" in err.value.rule and "50000000" in err.value.rule


def test_refuses_oversize_while_streaming_without_content_length(server):
    server.routes["/big.png"] = stream_without_length(3_000_000)
    with pytest.raises(URLFetchError) as err:
        fetch_image(server.url("/big.png"), field=FIELD, policy=LOOPBACK_OK, limits=FetchLimits(max_bytes=1_000_000))
    assert "at most 1000000 bytes" in err.value.rule


def test_refuses_content_that_is_not_an_image(server):
    server.routes["/fake.png"] = lambda h: send(h, b"<html>hello</html>" * 10, content_type="image/png")
    with pytest.raises(URLFetchError) as err:
        fetch_image(server.url("/fake.png"), field=FIELD, policy=LOOPBACK_OK)
    assert "must be an image" in err.value.rule


def test_refuses_an_image_with_too_many_pixels(server):
    server.routes["/huge.png"] = lambda h: send(h, png_bytes(64, 64))
    with pytest.raises(URLFetchError) as err:
        fetch_image(server.url("/huge.png"), field=FIELD, policy=LOOPBACK_OK, limits=FetchLimits(max_pixels=1000))
    assert "at most 1000 pixels" in err.value.rule and "64x64" in err.value.rule


def test_refuses_http_errors(server):
    with pytest.raises(URLFetchError) as err:
        fetch_image(server.url("/missing.png"), field=FIELD, policy=LOOPBACK_OK)
    assert "HTTP 200 (got 404" in err.value.rule


def test_times_out_when_the_server_does_not_answer(server):
    server.routes["/slow.png"] = stall(3)
    with pytest.raises(URLFetchError) as err:
        fetch_image(server.url("/slow.png"), field=FIELD, policy=LOOPBACK_OK,
                    limits=FetchLimits(read_timeout_s=0.3, deadline_s=5))
    assert "within 0.3 s" in err.value.rule


def test_total_deadline_stops_a_server_that_drips_bytes(server):
    """Each byte arrives well within the read timeout, but the whole body would take far longer than the
    deadline: the fetch must give up on the deadline."""
    server.routes["/drip.png"] = drip(png_bytes(), interval_s=0.05)
    with pytest.raises(URLFetchError) as err:
        fetch_image(server.url("/drip.png"), field=FIELD, policy=LOOPBACK_OK,
                    limits=FetchLimits(read_timeout_s=2, deadline_s=0.5))
    assert "fetched within 0.5 s" in err.value.rule


def _raw_drip(chunks, interval_s: float):
    """Send the raw response bytes `chunks` one after another, `interval_s` apart (never a complete response
    within the test's deadline): a header phase that a per-recv read timeout never ends."""
    def route(handler):
        try:
            for chunk in chunks:
                handler.wfile.write(chunk)
                handler.wfile.flush()
                time.sleep(interval_s)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        handler.close_connection = True
    return route


def _endless(chunk: bytes, count: int = 400):
    return (chunk for _ in range(count))


@pytest.mark.parametrize("chunks", [
    pytest.param(("HTTP/1.1 200 OK\r\nX-Slow: " + "a" * 400).encode(), id="one-header-byte-at-a-time"),
    pytest.param(b"".join(_endless(b"HTTP/1.1 100 Continue\r\n\r\n", 100)), id="endless-100-continue"),
])
def test_the_deadline_is_total_also_while_headers_drip(server, chunks):
    """Each byte arrives well within the read timeout, so only a total deadline ends the fetch (a server sending
    one header byte every 10 s held a fetch for 180 s against a 60 s deadline)."""
    pieces = [chunks[i:i + 1] for i in range(len(chunks))] if len(chunks) < 1000 else [chunks[i:i + 26] for i in range(0, len(chunks), 26)]
    server.routes["/slow-headers.png"] = _raw_drip(pieces, interval_s=0.05)
    started = time.monotonic()
    with pytest.raises(URLFetchError) as err:
        fetch_image(server.url("/slow-headers.png"), field=FIELD, policy=LOOPBACK_OK,
                    limits=FetchLimits(read_timeout_s=2, deadline_s=0.8))
    assert "fetched within 0.8 s" in err.value.rule
    assert time.monotonic() - started < 2.0


def test_redirect_targets_are_logged_and_shown_by_host_only(server, caplog):
    """Redirect targets are often signed URLs: their path and query are credentials."""
    server.routes["/start.png"] = redirect("/signed/secret-path.png?X-Amz-Signature=deadbeef")
    server.routes["/signed/secret-path.png"] = lambda h: send(h, b"nope", status=403, content_type="text/plain")
    with caplog.at_level(logging.DEBUG, logger="handler.url_fetch"):
        with pytest.raises(URLFetchError) as err:
            fetch_image(server.url("/start.png"), field=FIELD, policy=LOOPBACK_OK)
    assert "403" in err.value.message and "127.0.0.1" in caplog.text
    for text in (caplog.text, err.value.message):
        assert "deadbeef" not in text and "secret-path" not in text


def test_unresolvable_host_is_an_input_error():
    with pytest.raises(URLFetchError) as err:
        fetch_image("https://nope.example.test/a.png", field=FIELD, resolver=fake_dns({}))
    assert "must resolve" in err.value.rule


def test_errors_are_input_errors_naming_field_value_and_rule():
    with pytest.raises(InputError) as err:
        fetch_image("http://10.0.0.1/x.png", field="images[2].image")
    body = err.value.to_response()
    assert body["details"]["field"] == "images[2].image"
    assert body["details"]["value"] == "http://10.0.0.1/x.png"
    assert "images[2].image" in body["error"] and "10.0.0.1" in body["error"]


# ---------------------------------------------------------------------------------------------------- policy

@pytest.mark.parametrize("ip", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_are_allowed(ip):
    assert address_refusal(ipaddress.ip_address(ip)) is None


def test_allow_list_only_opens_what_it_names():
    policy = AddressPolicy(allow_networks=("127.0.0.1/32",))
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "loopback"
    assert policy.refusal(ipaddress.ip_address("10.0.0.1")) == "private"


def test_limits_from_env():
    limits = FetchLimits.from_env({"INPUT_IMAGE_MAX_BYTES": "1234", "INPUT_URL_DEADLINE_S": "7.5"})
    assert limits.max_bytes == 1234 and limits.deadline_s == 7.5
    with pytest.raises(ValueError, match="INPUT_URL_READ_TIMEOUT_S"):
        FetchLimits.from_env({"INPUT_URL_READ_TIMEOUT_S": "soon"})


# ---------------------------------------------------------------------------------------------------- TLS

def _tls_files(tmp_path, host):
    """A throwaway CA and a server certificate for `host` (DNS name only, no IP), as PEM files."""
    x509 = pytest.importorskip("cryptography.x509", reason="cryptography (via moto in requirements-dev.txt)")
    import datetime

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(ca_path), str(cert_path), str(key_path)


@pytest.fixture
def tls_server(tmp_path):
    import ssl

    ca, cert, key = _tls_files(tmp_path, "secure.example.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with ImageServer(ssl_context=context) as srv:
        srv.ca = ca
        yield srv


def test_https_pinned_to_the_vetted_address_verifies_the_certificate_for_the_name(tls_server):
    """Dialling the pinned IP must still send SNI and check the certificate against the host NAME."""
    tls_server.routes["/s.png"] = lambda h: send(h, png_bytes())
    dns = fake_dns({"secure.example.test": ["127.0.0.1"]})
    got = fetch_image(tls_server.url("/s.png", host="secure.example.test"), field=FIELD, policy=LOOPBACK_OK,
                      resolver=dns, ca_bundle=tls_server.ca)
    assert got.info.format == "PNG"
    assert tls_server.requests[0]["host"] == f"secure.example.test:{tls_server.port}"


def test_https_certificate_for_another_name_is_refused(tls_server):
    tls_server.routes["/s.png"] = lambda h: send(h, png_bytes())
    dns = fake_dns({"other.example.test": ["127.0.0.1"]})
    with pytest.raises(URLFetchError) as err:
        fetch_image(tls_server.url("/s.png", host="other.example.test"), field=FIELD, policy=LOOPBACK_OK,
                    resolver=dns, ca_bundle=tls_server.ca)
    assert "valid TLS certificate" in err.value.rule
    assert tls_server.requests == []


def test_https_untrusted_certificate_is_refused(tls_server):
    tls_server.routes["/s.png"] = lambda h: send(h, png_bytes())
    dns = fake_dns({"secure.example.test": ["127.0.0.1"]})
    with pytest.raises(URLFetchError) as err:
        fetch_image(tls_server.url("/s.png", host="secure.example.test"), field=FIELD, policy=LOOPBACK_OK,
                    resolver=dns)  # default CAs: our test CA is not among them
    assert "valid TLS certificate" in err.value.rule


# ---- a hostile server's malformed answers are refusals of the caller's URL, never an internal error -----------

def test_a_redirect_to_a_malformed_url_is_refused_naming_the_redirect(server):
    server.routes["/go"] = redirect("http://[::1/")  # urljoin raises ValueError on it
    with pytest.raises(URLFetchError) as err:
        fetch_image(server.url("/go"), field=FIELD, policy=LOOPBACK_OK)
    assert "invalid URL" in err.value.rule and err.value.details["field"] == FIELD


@pytest.mark.parametrize("declared", ["\u00b2", "9" * 5000, "1" * 19])
def test_an_unreadable_or_absurd_content_length_does_not_break_the_fetch(server, declared):
    """"²" is a digit to str.isdigit but not to int(); 5,000 digits are over int()'s limit; 19 digits are over
    any size cap. Each is the server's lie, answered as a refusal or by the capped read."""
    body = png_bytes()

    def route(h):
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", declared)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)
        h.close_connection = True

    server.routes["/a.png"] = route
    try:
        got = fetch_image(server.url("/a.png"), field=FIELD, policy=LOOPBACK_OK)
    except URLFetchError as exc:
        assert exc.details["field"] == FIELD
    else:
        assert got.data == body
