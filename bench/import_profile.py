"""Where ComfyUI's start goes before it listens: one start under `python -X importtime`, summarised.

Why: the cold-start bench (bench/coldstart.py) shows ComfyUI listening 7-10 s after start.sh launched it on the
GPU machines, the largest phase of the first image that this project does not control. This names the modules that
take that time, so the phase is explained and a change to it can be measured. `--quick-test-for-ci` makes ComfyUI
exit right after loading every node, before it listens; bytecode should be primed (run it twice, report the second).

Usage: python -m bench.import_profile --comfyui PATH [--python PY] [--comfy-args "..."] --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def parse(stderr: str) -> list[tuple[int, int, int, str]]:
    """(cumulative us, self us, depth, module) for each `import time:` line."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) < 3:
            continue
        try:
            self_us, cum_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue
        name = parts[2].rstrip("\n")
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((cum_us, self_us, depth, name.strip()))
    return rows


def summarise(rows: list[tuple[int, int, int, str]], top: int = 15) -> dict:
    packages: dict[str, int] = {}
    for _, self_us, _, name in rows:
        packages[name.split(".")[0]] = packages.get(name.split(".")[0], 0) + self_us
    return {
        "imports_total_s": round(sum(r[1] for r in rows) / 1e6, 2),
        "top_level_by_cumulative_s": [(name, round(cum / 1e6, 2)) for cum, _, depth, name in
                                      sorted((r for r in rows if r[2] == 0), reverse=True)[:top]],
        "packages_by_self_s": sorted(((k, round(v / 1e6, 2)) for k, v in packages.items()), key=lambda kv: -kv[1])[:top],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.import_profile", description=__doc__.splitlines()[0])
    p.add_argument("--comfyui", type=Path, required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--comfy-args", default="--disable-auto-launch --preview-method none --disable-api-nodes")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    cmd = [args.python, "-X", "importtime", "main.py", "--quick-test-for-ci", *args.comfy_args.split()]
    runs = []
    for _ in range(2):                       # the first writes bytecode where it can; report the second
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=args.comfyui, capture_output=True, text=True, env=dict(os.environ), timeout=300)
        runs.append((time.perf_counter() - t0, done))
    wall, done = runs[-1]
    custom = [line.strip() for line in done.stdout.splitlines() + done.stderr.splitlines()
              if re.match(r"^\s*[\d.]+ seconds", line)]
    result = {"wall_s": round(wall, 2), "first_wall_s": round(runs[0][0], 2), "rc": done.returncode,
              **summarise(parse(done.stderr)), "custom_node_times": custom[:10]}
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
