"""`python -m tools.frontend_export --comfyui PATH --python PY --templates DIR --out DIR`: the real frontend's own API
export of every template, to compare the converter with (tools.frontend_compare).

Why: handler/ui_to_api.py reproduces in Python what the browser does in `graphToPrompt`; the only trustworthy
reference is that browser code itself, run on the same files. This starts a ComfyUI on loopback (tools.comfy_server;
it serves the frontend package its requirements pin), opens it in headless Chromium (Debian package `chromium`)
driven over the DevTools protocol, and for each template calls the app's own loader `app.loadGraphData(workflow)`
and then `app.graphToPrompt()`, saving `output` (the API prompt the GUI would queue) as DIR/<template>.json, or
DIR/<template>.error.txt when the frontend throws.

Only loopback traffic: Chromium resolves every other host name to nothing (--host-resolver-rules), so a template
or the frontend cannot reach the internet. API nodes are loaded (not start.sh's --disable-api-nodes) so that the
templates that use them can be exported too; nothing is ever queued, so no API node runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket  # websocket-client, a runtime dependency already (runpod)

from handler.ui_to_api import is_ui_format

from .comfy_server import ComfyServer
from .converter_corpus import template_files

# Settings a first start would otherwise interrupt with dialogs; everything else stays at the frontend's defaults.
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Workflow.ShowMissingModelsWarning": False,
            "Comfy.Workflow.ShowMissingNodesWarning": False}
EXPORT_JS = """
async (workflow, name) => {
  await window.app.loadGraphData(workflow, true, true, name, {skipAssetScans: true, silentAssetErrors: true});
  const prompt = await window.app.graphToPrompt();
  return JSON.stringify(prompt.output);
}
"""


class Chromium:
    """A headless Chromium with one page, driven over the DevTools protocol (loopback only)."""

    def __init__(self, binary: str = "chromium"):
        self.binary = shutil.which(binary) or binary
        self._profile = tempfile.mkdtemp(prefix="chromium-export-")
        self._proc: subprocess.Popen | None = None
        self._ws: websocket.WebSocket | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> "Chromium":
        self._proc = subprocess.Popen(
            [self.binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", f"--user-data-dir={self._profile}",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
             "--no-first-run", "--no-default-browser-check", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = Path(self._profile, "DevToolsActivePort")
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise RuntimeError("Chromium did not open its DevTools port (is the Debian package `chromium` installed?)")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:  # noqa: S310
            page = next(t for t in json.load(resp) if t["type"] == "page")
        self._ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=300, suppress_origin=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def evaluate(self, expression: str) -> Any:
        """Run `expression` in the page, await it, return its JSON value; a page exception raises JsError."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text")
            raise JsError(str(text))
        return result["result"].get("value")


class JsError(Exception):
    """The page threw while loading or exporting a workflow."""


def open_app(browser: Chromium, url: str, timeout_s: float = 180) -> None:
    browser.call("Page.navigate", url=url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if browser.evaluate("!!(window.app && window.app.graph && window.app.canvas && "
                                "Object.keys(LiteGraph.registered_node_types).length > 100)"):
                return
        except (JsError, RuntimeError):
            pass
        time.sleep(1)
    raise TimeoutError(f"the ComfyUI frontend at {url} did not become ready in {timeout_s:.0f} s")


def export_all(browser: Chromium, files: list[Path], out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    counts = {"exported": 0, "frontend_error": 0, "skipped": 0}
    for path in files:
        try:
            workflow = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            workflow = None
        if not is_ui_format(workflow):
            counts["skipped"] += 1
            continue
        stem = path.name[:-len(".json")]
        try:
            text = browser.evaluate(f"({EXPORT_JS})({json.dumps(workflow)}, {json.dumps(path.name)})")
            (out / f"{stem}.json").write_text(json.dumps(json.loads(text), indent=1) + "\n", encoding="utf-8")
            counts["exported"] += 1
        except JsError as exc:
            (out / f"{stem}.error.txt").write_text(str(exc) + "\n", encoding="utf-8")
            counts["frontend_error"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.frontend_export", description=__doc__.split("\n\n")[0])
    p.add_argument("--comfyui", type=Path, required=True, help="ComfyUI checkout to serve the frontend")
    p.add_argument("--python", default=sys.executable, help="Python with ComfyUI's requirements")
    p.add_argument("--templates", type=Path, required=True, help="folder holding the template JSON files")
    p.add_argument("--out", type=Path, required=True, help="folder for <template>.json (the frontend's API prompt)")
    p.add_argument("--object-info", type=Path, help="also save the server's /object_info here")
    p.add_argument("--chromium", default=os.environ.get("CHROMIUM", "chromium"))
    args = p.parse_args(argv)
    with ComfyServer(args.comfyui, args.python, production_args=False) as server:
        req = urllib.request.Request(server.url + "/settings", data=json.dumps(SETTINGS).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).close()  # noqa: S310 - loopback
        if args.object_info:
            args.object_info.write_text(json.dumps(server.get_json("/object_info")), encoding="utf-8")
        with Chromium(args.chromium) as browser:
            open_app(browser, server.url)
            version = browser.evaluate("window.__COMFYUI_FRONTEND_VERSION__ || null")
            counts = export_all(browser, template_files(args.templates), args.out)
    print(f"frontend {version}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
