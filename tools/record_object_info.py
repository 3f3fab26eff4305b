"""`python -m tools.record_object_info --comfyui PATH [--python PY] [--full OUT]`: re-record the /object_info fixtures.

Why a tool: the fixtures must come from a real ComfyUI of the pinned version, started the way the worker starts it
(comfy_nodes/ loaded through extra_model_paths.yaml, start.sh's default flags, placeholder model files under the
production names). Doing that by hand after every upgrade is where fixtures drift. This starts such a ComfyUI
(tools.comfy_server, CPU, loopback), saves the full response (`--full`, optional: the converter corpus and the
upgrade check can use it), and writes the trimmed tests/fixtures/object_info.json and object_info_policy.json with
the trim scripts next to them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .comfy_server import REPO, ComfyServer

FIXTURES = REPO / "tests" / "fixtures"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.record_object_info", description=__doc__.split("\n\n")[1])
    p.add_argument("--comfyui", type=Path, required=True, help="ComfyUI checkout (its main.py)")
    p.add_argument("--python", default=sys.executable, help="Python with ComfyUI's requirements (default: this one)")
    p.add_argument("--full", type=Path, help="also keep the full /object_info response here")
    args = p.parse_args(argv)
    with ComfyServer(args.comfyui, args.python) as server:
        full = server.get_json("/object_info")
        log = server.log_text()
    if "IMPORT FAILED" in log:
        print("a custom node failed to import; refusing to record:\n" + log[-3000:], file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp, "object_info.json")
        dump.write_text(json.dumps(full), encoding="utf-8")
        if args.full:
            args.full.write_text(json.dumps(full, indent=1) + "\n", encoding="utf-8")
        for script in ("trim_object_info.py", "trim_policy_object_info.py"):
            rc = subprocess.call([sys.executable, str(FIXTURES / script), str(dump)])
            if rc:
                return rc
    print(f"{len(full)} node classes in the full response")
    return 0


if __name__ == "__main__":
    sys.exit(main())
