"""Fetch a caller-supplied input image by http(s) URL without letting the caller reach our network.

Why this exists: a job that names a URL makes the worker open a connection on the caller's behalf (SSRF). On a
cloud GPU host that could read the instance-metadata service (credentials), ComfyUI's own unauthenticated API on
127.0.0.1, or anything else on the private network. So, for the first URL and for every redirect hop:

* only http and https;
* the host name is resolved here, and EVERY address it resolves to must be public (not loopback, private,
  unique-local, link-local, multicast, reserved, unspecified, CGNAT, a known metadata address, or an IPv6
  form that embeds one of those IPv4 addresses: mapped, 6to4, NAT64, Teredo);
* the connection goes to the address we checked (pinned), so a DNS answer that changes between the check and
  the connect (rebinding) cannot redirect it; the Host header and TLS SNI/certificate check keep the real name;
* environment proxies are ignored (through a proxy the pinned address would not be what gets dialled);
* connect and read timeouts plus a total deadline, a byte cap (Content-Length and while streaming), and the
  body must be an image (magic bytes, pixel count; see image_bytes). The deadline is total: a read timeout only
  bounds each recv, so a server that sends one header byte every few seconds (or `100 Continue` forever) would
  hold a fetch open indefinitely; a watchdog shuts the fetch's sockets down when the deadline passes, whatever
  phase the fetch is in (TLS handshake, headers, body);
* what is logged of a URL is its host: redirect targets are often signed URLs whose query is a credential.

The pinning transport is the runpod SDK's PinnedIPAdapter (runpod.serverless.utils.rp_ssrf), which is sound; its
address policy and safe_get are not used, because that policy lets NAT64/6to4 forms of private addresses through,
can be switched off by an environment variable, has no total deadline, and does not let tests inject a resolver.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from runpod.serverless.utils.rp_ssrf import PinnedIPAdapter

from handler.errors import InputError, safe_text
from handler.image_bytes import (DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, ImageInfo,
                                 check_image_bytes)

log = logging.getLogger(__name__)

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Resolver = Callable[[str, int, float], Sequence[str]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "flux-comfy-worker/1 (input image fetch)"
_CHUNK = 64 * 1024


class UnsafeURLError(InputError):
    """The URL (or a redirect it led to) is not one the worker may fetch: scheme or destination refused."""


class URLFetchError(InputError):
    """The URL was allowed but fetching it failed: timeout, HTTP status, too large, or not an image."""


# --------------------------------------------------------------------------------------------------------------
# Address policy

# Networks not caught by ipaddress' is_private/is_reserved/... on every Python we run on.
_EXTRA_BLOCKED = (
    ("CGNAT", ipaddress.ip_network("100.64.0.0/10")),
    ("IETF protocol assignments", ipaddress.ip_network("192.0.0.0/24")),
    ("benchmarking", ipaddress.ip_network("198.18.0.0/15")),
    ("NAT64 local-use", ipaddress.ip_network("64:ff9b:1::/48")),
    ("discard-only", ipaddress.ip_network("100::/64")),
)
# Cloud metadata services. Most are link-local or unique-local already; listed so the refusal says why.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS
        "fd00:ec2::254",  # AWS IPv6 IMDS
        "fd00:ec2::253",
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> Optional[ipaddress.IPv4Address]:
    """The IPv4 address an IPv6 address stands for, if it is one of the transition forms that route to it."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]  # the client's address
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if int(addr) >> 32 == 0 and int(addr) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def address_refusal(addr: IPAddress) -> Optional[str]:
    """Why the worker must not connect to `addr` (e.g. "loopback"), or None if it is a public unicast address."""
    if addr in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            reason = address_refusal(inner)
            if reason is not None:
                return f"{reason} (embedded in {addr})"
        if addr.is_site_local:
            return "site-local"
    for name, net in _EXTRA_BLOCKED:
        if addr.version == net.version and addr in net:
            return name
    checks = (
        ("unspecified", addr.is_unspecified),
        ("loopback", addr.is_loopback),
        ("link-local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("reserved", addr.is_reserved),
        ("private", addr.is_private),
    )
    for name, hit in checks:
        if hit:
            return name
    if not addr.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which destination addresses may be fetched from.

    The default refuses everything address_refusal refuses. `allow_networks` punches explicit holes (tests use
    it to allow a 127.0.0.1 test server; nothing in production sets it); everything else is still checked.
    """

    allow_networks: tuple = ()

    def refusal(self, addr: IPAddress) -> Optional[str]:
        for net in self.allow_networks:
            net = ipaddress.ip_network(net)
            if addr.version == net.version and addr in net:
                return None
        return address_refusal(addr)


def system_resolver(host: str, port: int, timeout_s: float) -> Sequence[str]:
    """All addresses `host` resolves to (getaddrinfo), within `timeout_s`.

    getaddrinfo has no timeout of its own, so it runs in a helper thread that is abandoned if it overruns.
    """
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dns")
    try:
        future = pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        infos = future.result(timeout=max(timeout_s, 0.001))
    finally:
        pool.shutdown(wait=False)
    ips: list = []
    for info in infos:
        ip = info[4][0]
        if ip not in ips:
            ips.append(ip)
    return ips


# --------------------------------------------------------------------------------------------------------------
# Limits


# The longest any *_S setting may be (config.py reads the rest): beyond a week is a typo, and inf breaks lock and
# socket timeouts.
MAX_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on one fetch. `from_env` reads INPUT_URL_* variables (see README)."""

    max_bytes: int = 20 * 1024 * 1024
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    deadline_s: float = 60.0
    max_redirects: int = 5
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int = DEFAULT_MAX_FRAMES
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES  # all of a job's input images together, as LoadImage holds them

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "FetchLimits":
        d = cls()

        def num(name: str, default, kind):
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} must be a {kind.__name__}") from None
            if not 0 < value <= (MAX_SECONDS if kind is float else 2**62):  # NaN fails too
                raise ValueError(f"{name}={raw!r} must be > 0" + (" and at most a week" if kind is float else ""))
            return value

        return cls(
            max_bytes=num("INPUT_IMAGE_MAX_BYTES", d.max_bytes, int),
            connect_timeout_s=num("INPUT_URL_CONNECT_TIMEOUT_S", d.connect_timeout_s, float),
            read_timeout_s=num("INPUT_URL_READ_TIMEOUT_S", d.read_timeout_s, float),
            deadline_s=num("INPUT_URL_DEADLINE_S", d.deadline_s, float),
            max_redirects=int(num("INPUT_URL_MAX_REDIRECTS", d.max_redirects, int)),
            max_pixels=num("INPUT_IMAGE_MAX_PIXELS", d.max_pixels, int),
            max_frames=num("INPUT_IMAGE_MAX_FRAMES", d.max_frames, int),
            max_decoded_bytes=num("INPUT_IMAGE_MAX_DECODED_BYTES", d.max_decoded_bytes, int),
        )


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    info: ImageInfo
    final_url: str
    content_type: Optional[str] = field(default=None)


# --------------------------------------------------------------------------------------------------------------
# Fetch


def _check_url_shape(url: str, field_name: str, original: str, schemes: tuple = ("http", "https")) -> tuple:
    """Split `url`, refusing schemes not in `schemes` and host-less URLs. Returns (scheme, host, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(field_name, original, f"must be a valid http(s) URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        where = "" if url == original else f" (redirected to {host_of(url)})"
        allowed = " or ".join(schemes)
        raise UnsafeURLError(field_name, original, f"must use {allowed}, not {scheme or 'no scheme'!r}{where}")
    host = parts.hostname
    if not host:
        raise UnsafeURLError(field_name, original, "must name a host" + ("" if url == original else " (in a redirect)"))
    return scheme, host, port or (443 if scheme == "https" else 80)


def _vetted_addresses(host: str, port: int, *, field_name: str, original: str, policy: AddressPolicy,
                      resolver: Resolver, timeout_s: float) -> list:
    """Resolve `host` and return its addresses, refusing if ANY is not allowed (a name with one public and one
    private address is treated as hostile)."""
    try:
        literal = ipaddress.ip_address(host)
        raw: Iterable[str] = [str(literal)]
    except ValueError:
        try:
            raw = resolver(host, port, timeout_s)
        except concurrent.futures.TimeoutError:
            raise URLFetchError(field_name, original, f"host {host!r} must resolve within {timeout_s:.0f} s") from None
        except (OSError, UnicodeError) as exc:
            raise URLFetchError(field_name, original, f"host {host!r} must resolve ({exc})") from None
    addrs = []
    for ip in raw:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone id
        reason = policy.refusal(addr)
        if reason is not None:
            raise UnsafeURLError(
                field_name, original,
                f"must not point to a loopback, private, link-local or metadata address "
                f"(host {host!r} resolves to {addr}: {reason})",
            )
        addrs.append(str(addr))
    if not addrs:
        raise URLFetchError(field_name, original, f"host {host!r} must resolve to at least one address")
    return addrs


def _remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def host_of(url: str) -> str:
    """What may be shown or logged of a URL: scheme and host (the path and query may carry a signature)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    return f"{parts.scheme}://{host}{port}/..."


class _Watchdog:
    """Shuts down every socket of one fetch when its total deadline passes.

    A blocked recv in the fetching thread then returns at once and the fetch fails with the deadline error; this
    is what makes the deadline total, since no timeout of requests/urllib3/http.client spans a whole response.
    """

    def __init__(self, deadline: float):
        self.fired = False
        self._sockets: list = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(deadline - time.monotonic(), 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def track(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock) -> None:
    try:
        # The plain socket's shutdown, also for a TLS socket: it ends the blocked read at the file descriptor
        # without touching the TLS object the other thread is inside.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _DeadlineAdapter(PinnedIPAdapter):
    """The pinning adapter, with every new connection's socket handed to the fetch's watchdog."""

    def __init__(self, pinned_ip: str, watchdog: _Watchdog, **kwargs):
        self._watchdog = watchdog
        super().__init__(pinned_ip, **kwargs)

    def _pin(self, pool, url: str):
        pool = super()._pin(pool, url)
        base = pool.ConnectionCls
        if not getattr(base, "_watched", False):
            watchdog = self._watchdog

            class Watched(base):
                _watched = True

                def _new_conn(self):
                    sock = super()._new_conn()
                    watchdog.track(sock)
                    return sock

            pool.ConnectionCls = Watched
        return pool


def _open(url: str, ips: list, *, limits: FetchLimits, deadline: float, field_name: str, original: str,
          watchdog: _Watchdog, ca_bundle: Optional[str] = None, accept: str = "image/*"):
    """GET `url` pinned to the first of `ips` that accepts a connection. Returns (session, response)."""
    last_error: Optional[BaseException] = None
    shown = host_of(url)
    for ip in ips:
        remaining = _remaining(deadline)
        if remaining <= 0:
            break
        session = requests.Session()
        session.trust_env = False  # no env proxies (would defeat pinning), no .netrc credentials
        if ca_bundle:
            session.verify = ca_bundle
        adapter = _DeadlineAdapter(ip, watchdog, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            response = session.get(
                url,
                headers={"User-Agent": _USER_AGENT, "Accept": accept, "Accept-Encoding": "identity"},
                allow_redirects=False,
                stream=True,
                timeout=(min(limits.connect_timeout_s, remaining), min(limits.read_timeout_s, remaining)),
            )
            return session, response
        except requests.exceptions.RequestException as exc:
            session.close()
            if watchdog.fired:
                raise URLFetchError(field_name, original, f"must be fetched within {limits.deadline_s:g} s") from None
            if isinstance(exc, requests.exceptions.ReadTimeout):
                raise URLFetchError(field_name, original,
                                    f"must respond within {limits.read_timeout_s:g} s (no response from {shown})") from None
            if isinstance(exc, requests.exceptions.SSLError):
                raise URLFetchError(field_name, original, "must present a valid TLS certificate for its host "
                                                          f"({shown}: {safe_text(exc, 300)})") from None
            if not isinstance(exc, requests.exceptions.ConnectionError):  # ConnectTimeout is one too
                raise URLFetchError(field_name, original,
                                    f"must be fetchable ({type(exc).__name__} from {shown})") from None
            last_error = exc  # refused or timed out: try the next address
        except ValueError:
            # What the server sent cannot be parsed (requests parses a redirect's Location as it reads the answer:
            # "http://[::1/" raises here): the caller's URL is at fault, not the worker.
            session.close()
            raise URLFetchError(field_name, original, f"must answer with well-formed HTTP ({shown} sent a header "
                                                      "that cannot be parsed, e.g. a redirect to an invalid URL)") from None
    if _remaining(deadline) <= 0:
        raise URLFetchError(field_name, original, f"must be fetched within {limits.deadline_s:g} s")
    if isinstance(last_error, requests.exceptions.ConnectTimeout):
        raise URLFetchError(field_name, original,
                            f"must accept a connection within {limits.connect_timeout_s:g} s ({shown})") from None
    raise URLFetchError(field_name, original, f"must be reachable ({shown}: {type(last_error).__name__})") from None


def _read_capped(response, *, limits: FetchLimits, deadline: float, field_name: str, original: str,
                 watchdog: _Watchdog, sink: Optional[Callable[[bytes], None]] = None) -> bytes:
    """Read the body, aborting past the byte cap or the total deadline.

    Each read is at most one recv (read1) and the socket timeout is tightened to what is left of the deadline,
    so a server that drips one byte at a time cannot hold the job past the deadline.
    """
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    chunks, total = [], 0
    while True:
        remaining = _remaining(deadline)
        if remaining <= 0:
            raise URLFetchError(field_name, original, f"must be fetched within {limits.deadline_s:g} s")
        if sock is not None:
            try:
                sock.settimeout(min(limits.read_timeout_s, remaining))
            except OSError:
                pass
        try:
            chunk = raw.read1(_CHUNK, decode_content=False)
        except (urllib3.exceptions.ReadTimeoutError, socket.timeout, TimeoutError):
            if _remaining(deadline) <= 0:
                raise URLFetchError(field_name, original, f"must be fetched within {limits.deadline_s:g} s") from None
            raise URLFetchError(field_name, original,
                                f"must keep sending data (nothing for {limits.read_timeout_s:g} s)") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if watchdog.fired:
                raise URLFetchError(field_name, original, f"must be fetched within {limits.deadline_s:g} s") from None
            raise URLFetchError(field_name, original, f"must be downloadable in full ({type(exc).__name__})") from None
        if not chunk:
            if watchdog.fired:  # the watchdog's shutdown reads as end of stream
                raise URLFetchError(field_name, original, f"must be fetched within {limits.deadline_s:g} s")
            break
        total += len(chunk)
        if total > limits.max_bytes:
            raise URLFetchError(field_name, original, f"must be at most {limits.max_bytes} bytes (download exceeded it)")
        if sink is not None:
            sink(chunk)  # large bodies (LoRA files) go to a file, not memory
        else:
            chunks.append(chunk)
    return b"".join(chunks)


def fetch_image(url: str, *, field: str, limits: FetchLimits = FetchLimits(),
                policy: AddressPolicy = AddressPolicy(), resolver: Resolver = system_resolver,
                ca_bundle: Optional[str] = None) -> FetchedImage:
    """Download the image at `url` under the rules in the module docstring.

    Raises UnsafeURLError when the URL or a redirect is refused before any connection to it is made, and
    URLFetchError when the fetch fails or the body is not an acceptable image; both are InputError(field, url,
    rule). `policy` and `resolver` exist so tests can allow a loopback test server or fake DNS answers;
    `ca_bundle` replaces the default CA certificates (certifi) for TLS verification, which is never switched off.
    """
    original = url
    if not isinstance(url, str):
        raise UnsafeURLError(field, url, "must be an http(s) URL string")
    deadline = time.monotonic() + limits.deadline_s
    watchdog = _Watchdog(deadline)
    try:
        return _fetch(url.strip(), field=field, original=original, limits=limits, policy=policy, resolver=resolver,
                      ca_bundle=ca_bundle, deadline=deadline, watchdog=watchdog)
    finally:
        watchdog.cancel()


def fetch_to_file(url: str, *, field: str, sink: Callable[[bytes], None], limits: FetchLimits,
                  policy: AddressPolicy = AddressPolicy(), resolver: Resolver = system_resolver,
                  ca_bundle: Optional[str] = None, https_only: bool = True, what: str = "file") -> tuple[int, str]:
    """Download `url` under the same guard as `fetch_image`, handing each chunk of the body to `sink` (the body
    never has to fit in memory). No check of the content is made here: the caller checks the file it wrote.
    `https_only` refuses plain http for the URL and every redirect. Returns (bytes received, final URL)."""
    original = url
    if not isinstance(url, str):
        raise UnsafeURLError(field, url, "must be an https URL string" if https_only else "must be an http(s) URL string")
    deadline = time.monotonic() + limits.deadline_s
    watchdog = _Watchdog(deadline)
    received = [0]

    def counting(chunk: bytes) -> None:
        received[0] += len(chunk)
        sink(chunk)

    try:
        _data, final_url, _type, hop = _download(
            url.strip(), field=field, original=original, limits=limits, policy=policy, resolver=resolver,
            ca_bundle=ca_bundle, deadline=deadline, watchdog=watchdog, sink=counting,
            schemes=("https",) if https_only else ("http", "https"), accept="*/*", what=what)
    finally:
        watchdog.cancel()
    log.info("%s %s: fetched %d bytes after %d redirect(s)", what, field, received[0], hop)
    return received[0], final_url


def _fetch(current: str, *, field: str, original: str, limits: FetchLimits, policy: AddressPolicy, resolver: Resolver,
           ca_bundle: Optional[str], deadline: float, watchdog: _Watchdog) -> FetchedImage:
    data, current, content_type, hop = _download(current, field=field, original=original, limits=limits,
                                                 policy=policy, resolver=resolver, ca_bundle=ca_bundle,
                                                 deadline=deadline, watchdog=watchdog)
    info = check_image_bytes(data, field=field, value=original, max_pixels=limits.max_pixels,
                             max_frames=limits.max_frames, max_decoded_bytes=limits.max_decoded_bytes, error=URLFetchError)
    log.info("input image %s: fetched %d bytes (%s %dx%d) after %d redirect(s)",
             field, len(data), info.format, info.width, info.height, hop)
    return FetchedImage(data=data, info=info, final_url=current, content_type=content_type)


def _download(current: str, *, field: str, original: str, limits: FetchLimits, policy: AddressPolicy,
              resolver: Resolver, ca_bundle: Optional[str], deadline: float, watchdog: _Watchdog,
              sink: Optional[Callable[[bytes], None]] = None, schemes: tuple = ("http", "https"),
              accept: str = "image/*", what: str = "input image") -> tuple[bytes, str, Optional[str], int]:
    """Follow redirects (each hop re-checked) to a 200 and read its body. Returns (body, final URL, type, hops);
    the body is empty when `sink` received it."""
    for hop in range(limits.max_redirects + 1):
        _scheme, host, port = _check_url_shape(current, field, original, schemes)
        ips = _vetted_addresses(host, port, field_name=field, original=original, policy=policy, resolver=resolver,
                                timeout_s=max(min(limits.connect_timeout_s, _remaining(deadline)), 0.001))
        session, response = _open(current, ips, limits=limits, deadline=deadline, field_name=field, original=original,
                                  watchdog=watchdog, ca_bundle=ca_bundle, accept=accept)
        try:
            status = response.status_code
            if status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise URLFetchError(field, original, f"redirect ({status}) must carry a Location ({host_of(current)})")
                nxt = urljoin(current, location)
                log.info("%s %s: redirect %d -> %s", what, field, status, host_of(nxt))
                current = nxt
                continue
            if status != 200:
                raise URLFetchError(field, original, f"must answer HTTP 200 (got {status} from {host_of(current)})")
            encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise URLFetchError(field, original, f"must be sent without Content-Encoding (got {encoding!r})")
            declared = (response.headers.get("Content-Length") or "").strip()
            # ASCII digits only ("²" is a digit to str.isdigit), and a length of digits before int() (which
            # refuses 4,300 of them); an unreadable Content-Length is left to the capped read.
            if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limits.max_bytes):
                raise URLFetchError(field, original, f"must be at most {limits.max_bytes} bytes "
                                    f"(Content-Length says {safe_text(declared, 24)})")
            data = _read_capped(response, limits=limits, deadline=deadline, field_name=field, original=original,
                                watchdog=watchdog, sink=sink)
            content_type = response.headers.get("Content-Type")
        finally:
            response.close()
            session.close()
        return data, current, content_type, hop
    raise UnsafeURLError(field, original, f"must reach the {what} within {limits.max_redirects} redirects")
