"""`python -m handler.convert WORKFLOW.json`: print a GUI-saved ComfyUI workflow in API format.

The same conversion the worker applies to a UI-format `input.workflow`, as a command for users who want to
see (or keep) the API graph. Node definitions come from a running ComfyUI (`--comfyui-url`, default
$COMFYUI_URL or http://127.0.0.1:8188) or, offline, from a saved `GET /object_info` response
(`--object-info FILE`), since the conversion depends on each node's declared inputs.

Exit status: 0 on success, 1 when the workflow cannot be converted (the reason is printed), 2 for bad usage
or when node definitions cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .errors import WorkerError
from .ui_to_api import convert, is_ui_format

DEFAULT_URL = "http://127.0.0.1:8188"


def fetch_object_info(base_url: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """GET /object_info from a ComfyUI server."""
    url = base_url.rstrip("/") + "/object_info"
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - user-chosen ComfyUI URL
        return json.load(resp)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m handler.convert",
        description="Convert a ComfyUI GUI workflow (UI format) to the API format and print it.",
    )
    p.add_argument("workflow", type=Path, help="UI-format workflow JSON saved by the ComfyUI GUI")
    p.add_argument("--object-info", type=Path, metavar="FILE", help="saved GET /object_info JSON (offline use)")
    p.add_argument(
        "--comfyui-url",
        default=os.environ.get("COMFYUI_URL", DEFAULT_URL),
        help="ComfyUI to read node definitions from (default: $COMFYUI_URL or %(default)s)",
    )
    p.add_argument("-o", "--output", type=Path, help="write the API JSON here instead of stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        workflow = json.loads(args.workflow.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read workflow {args.workflow}: {exc}", file=sys.stderr)
        return 2
    if not is_ui_format(workflow):
        print(f"error: {args.workflow} is not a UI-format workflow (no 'nodes' list); API-format files need no "
              "conversion.", file=sys.stderr)
        return 1
    try:
        if args.object_info is not None:
            object_info = json.loads(args.object_info.read_text(encoding="utf-8"))
        else:
            object_info = fetch_object_info(args.comfyui_url)
    except (OSError, ValueError, urllib.error.URLError) as exc:
        source = args.object_info or f"{args.comfyui_url}/object_info"
        print(f"error: cannot read node definitions from {source}: {exc}. Start ComfyUI or pass --object-info FILE.",
              file=sys.stderr)
        return 2
    try:
        prompt = convert(workflow, object_info)
    except WorkerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    text = json.dumps(prompt, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
