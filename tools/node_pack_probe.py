"""ComfyUI's own start-up, once, without serving: which custom node modules loaded and which classes each has.

Run by tools/install_node_packs.py with ComfyUI's interpreter, in the ComfyUI folder:

    python /path/to/node_pack_probe.py --out probe.json [-- extra ComfyUI flags]

ComfyUI's main.py is imported as a module (so its `__main__` block, the server loop, never runs): that is
ComfyUI's own set-up (arguments, paths, prestartup scripts of custom nodes), then `main.start_comfyui()` runs
`nodes.init_extra_nodes`, the loader the server itself uses, on the CPU. The import time and failure of every
custom node module is read from what ComfyUI logs ("Import times for custom nodes"), and each class's pack from the
`RELATIVE_PYTHON_MODULE` ComfyUI sets on it. Nothing of ComfyUI is copied here. The JSON written to --out:
{"modules": {folder: {"seconds", "loaded"}}, "classes": {folder: [class, ...]}, "log_tail": "..."}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys

_IMPORT_LINE = re.compile(r"^\s*([\d.]+) seconds( \(IMPORT FAILED\))?: (.+)$")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.modules: dict[str, dict] = {}
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a custom node's malformed log call
            return
        self.lines.append(message)
        del self.lines[:-200]
        match = _IMPORT_LINE.match(message)
        if match:
            folder = os.path.basename(match.group(3).rstrip("/"))
            folder = folder[:-3] if folder.endswith(".py") else folder
            self.modules[folder] = {"seconds": float(match.group(1)), "loaded": not match.group(2)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("comfyui_args", nargs="*")
    args = parser.parse_args()
    capture = _Capture()
    logging.getLogger().addHandler(capture)
    sys.argv = ["main.py", "--cpu", "--disable-api-nodes", "--disable-auto-launch", "--database-url",
                "sqlite:///:memory:", *args.comfyui_args]
    sys.path.insert(0, os.getcwd())
    import main as comfy_main  # ComfyUI's main.py: its module-level set-up only

    logging.getLogger().addHandler(capture)  # ComfyUI's setup_logger may have replaced the root's handlers
    comfy_main.start_comfyui()
    import nodes

    classes: dict[str, list[str]] = {}
    for name, cls in nodes.NODE_CLASS_MAPPINGS.items():
        module = getattr(cls, "RELATIVE_PYTHON_MODULE", "") or ""
        if module.startswith("custom_nodes."):
            classes.setdefault(module.split(".", 1)[1], []).append(name)
    with open(args.out, "w") as out:
        json.dump({"modules": capture.modules, "classes": classes,
                   "log_tail": "\n".join(capture.lines[-40:])}, out, indent=1)
    sys.stdout.flush()
    os._exit(0)  # ComfyUI's worker thread and loop: nothing to wait for


if __name__ == "__main__":
    sys.exit(main())
