"""A tiny loopback HTTP server for tests that fetch input images by URL (no network beyond 127.0.0.1).

Routes are plain functions of the request handler, so each test states exactly what the "remote" server does:
serve an image, redirect, lie about its size, stall. Every request is recorded (path and Host header) so tests
can assert that a refused URL was never even requested.
"""

from __future__ import annotations

import io
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from PIL import Image


def png_bytes(width: int = 8, height: int = 8, color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(width: int = 8, height: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 240)).save(buf, format="JPEG")
    return buf.getvalue()


def gif_bytes(frames: int, width: int = 8, height: int = 8) -> bytes:
    """An animated GIF whose frames differ (so no encoder merges them)."""
    images = [Image.new("RGB", (width, height), ((i * 37) % 256, (i * 91) % 256, 100)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=40, loop=0)
    return buf.getvalue()


def frame_bomb_gif(frames: int = 2000, width: int = 4000, height: int = 4000) -> bytes:
    """A GIF of `frames` frames on a width x height canvas in ~23 bytes per frame: each frame draws one pixel,
    yet a loader that converts every frame (ComfyUI's LoadImage) decodes the whole canvas each time."""
    out = bytearray(b"GIF89a")
    out += struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"  # 2-colour table
    for i in range(frames):
        out += b"\x21\xf9\x04\x04\x01\x00\x00\x00"  # graphic control: keep the frame, 10 ms
        out += b"\x2c" + struct.pack("<HHHHB", i % width, 0, 1, 1, 0)  # a 1x1 frame
        out += b"\x02\x02\x44\x01\x00"  # LZW: one pixel
    return bytes(out + b"\x3b")


Route = Callable[[BaseHTTPRequestHandler], None]


def send(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200, content_type: str = "image/png",
         headers: dict | None = None, content_length: int | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body) if content_length is None else content_length))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, status: int = 302) -> Route:
    def route(handler):
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return route


def stream_without_length(total: int, chunk: int = 65536) -> Route:
    """Send `total` bytes with no Content-Length (connection close marks the end)."""
    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Connection", "close")
        handler.end_headers()
        sent = 0
        try:
            while sent < total:
                n = min(chunk, total - sent)
                handler.wfile.write(b"\0" * n)
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True
    return route


def stall(seconds: float) -> Route:
    """Accept the request, then say nothing for `seconds`."""
    def route(handler):
        time.sleep(seconds)
        try:
            send(handler, png_bytes())
        except (BrokenPipeError, ConnectionResetError):
            pass
    return route


def drip(body: bytes, interval_s: float) -> Route:
    """Send headers, then the body one byte every `interval_s` (each gap shorter than a read timeout)."""
    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            for i in range(len(body)):
                handler.wfile.write(body[i:i + 1])
                handler.wfile.flush()
                time.sleep(interval_s)
        except (BrokenPipeError, ConnectionResetError):
            pass
    return route


class ImageServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port> serving `routes` (path -> Route); HTTPS with `ssl_context`."""

    def __init__(self, ssl_context=None) -> None:
        self.scheme = "https" if ssl_context is not None else "http"
        self.routes: dict[str, Route] = {}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                server.requests.append({"path": path, "host": self.headers.get("Host")})
                route = server.routes.get(path)
                if route is None:
                    send(self, b"not found", status=404, content_type="text/plain")
                else:
                    route(self)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def paths_requested(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def __enter__(self) -> "ImageServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
