"""How the fp8 DiT gets from a cached file onto the card: ComfyUI's way against building it on the card.

Why: the first image of a cold worker pays for the DiT twice on the host side (BENCHMARKS.md, session 13: UNETLoader
0.86 s to read the file and copy it into a host model, then 1.92 s in the first KSampler to move that model onto the
card and make the bf16 copies). ComfyUI's `load_diffusion_model_state_dict` builds the model with its own default
device (the host) and copies the file's tensors into it; built under `torch.device(<card>)`, PyTorch's own device
context, the same function puts each parameter on the card and copies the file's tensors there once. This measures
each way in a fresh process, as a worker's first load is, with the file in the page cache:

  comfy       comfy.sd.load_diffusion_model (the file's tensors into a host model), then load_models_gpu
  card-built  the same load run through the worker's own on_card.build (the model built under torch.device(card),
              the file's mmap'd host tensors copied in), then load_models_gpu (which should find nothing to move)
  card-sd     the state dict read straight onto the card (load_torch_file(device=card)), the model built there:
              a device-to-device copy, at the price of both copies on the card at once
  raw         the file's bytes alone: pageable host-to-card copies of the mmap'd tensors, and the same through two
              pinned staging buffers (what a reader of our own could reach)
  overlap     card-built in a thread while the main thread runs pure-Python work, as ComfyUI's imports are: how
              much each slows the other (whether a load can hide behind the imports)

Every variant fingerprints the loaded weights (bytes summed per tensor, on the card) so a faster way that loads
something else is caught. Prints and writes JSON:
    python -m bench.dit_load --comfyui .comfyui [--variants comfy,card-built,card-sd,raw,overlap] [--dit FILE]
                             [--out FILE]
Run it with tcmalloc preloaded, as start.sh runs ComfyUI. Without a GPU it runs ComfyUI with --cpu, where every way
is the host build (the integration tier checks that the fingerprints then agree).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DIT = "flux1-dev-fp8-e4m3fn.safetensors"
PY_WORK = 80_000_000          # iterations of the pure-Python loop in `overlap` (~2.5 s alone, longer than the load)


def _rss() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 2**20, 2)     # kB -> GiB
    return out


def _setup(comfyui: Path):
    sys.path[:0] = [str(comfyui), str(Path(__file__).resolve().parent.parent / "comfy_nodes")]
    import torch

    # What start.sh gives a card that holds the DiT (--cpu: a smoke run of this script on a machine without one).
    sys.argv = [sys.argv[0], "--disable-dynamic-vram"] + ([] if torch.cuda.is_available() else ["--cpu"])
    import comfy.options

    comfy.options.enable_args_parsing()

    import comfy.model_management as mm
    import comfy.sd
    import comfy.utils

    torch.zeros(1, device=mm.get_torch_device())             # CUDA context outside every timing
    _sync(torch)
    return torch, mm, comfy


def _sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _card_gib(torch, peak: bool = False) -> float:
    if not torch.cuda.is_available():
        return 0.0
    return round((torch.cuda.max_memory_allocated() if peak else torch.cuda.memory_allocated()) / 2**30, 2)


def _fingerprint(torch, model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach()
        s = t.contiguous().view(torch.uint8).sum(dtype=torch.int64).item() if t.numel() else 0
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}:{s};".encode())
    return h.hexdigest()[:16]


def _load(torch, mm, comfy, path: Path, how: str, fingerprint: bool = True) -> dict:
    dev = mm.get_torch_device()
    sync = lambda: _sync(torch)  # noqa: E731
    t0 = time.perf_counter()
    if how == "comfy":
        patcher = comfy.sd.load_diffusion_model(str(path))
    elif how == "card-built":          # the shipped node's own build (on_card.build) around UNETLoader's call
        from flux_fast import on_card

        (patcher,) = on_card.build(lambda: (comfy.sd.load_diffusion_model(str(path)),), dev, path.name)
    else:
        sd, metadata = comfy.utils.load_torch_file(str(path), return_metadata=True, device=dev)
        with torch.device(dev):
            patcher = comfy.sd.load_diffusion_model_state_dict(sd, {}, metadata=metadata)
        del sd
    sync()
    t1 = time.perf_counter()
    peak_build = _card_gib(torch, peak=True)
    mm.load_models_gpu([patcher], force_full_load=True)
    sync()
    t2 = time.perf_counter()
    model = patcher.model.diffusion_model
    devices = sorted({str(p.device) for p in model.parameters()})
    return {"load_s": round(t1 - t0, 3), "to_card_s": round(t2 - t1, 3), "total_s": round(t2 - t0, 3),
            "param_devices": devices, "card_peak_gib": max(peak_build, _card_gib(torch, peak=True)),
            "card_now_gib": _card_gib(torch), "host": _rss(),
            "fingerprint": _fingerprint(torch, model) if fingerprint else None}


def _raw(torch, mm, comfy, path: Path) -> dict:
    import safetensors

    dev = mm.get_torch_device()
    gib = path.stat().st_size / 2**30
    out = {}
    with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
        tensors = [f.get_tensor(k) for k in f.keys()]
        torch.cuda.synchronize()
        t = time.perf_counter()
        gpu = [x.to(dev) for x in tensors]
        torch.cuda.synchronize()
        out["pageable_gib_s"] = round(gib / (time.perf_counter() - t), 2)
        del gpu
        torch.cuda.empty_cache()
        chunk = 64 * 2**20
        bufs = [torch.empty(chunk, dtype=torch.uint8).pin_memory() for _ in range(2)]
        done = [torch.cuda.Event(), torch.cuda.Event()]
        stream = torch.cuda.Stream()
        t = time.perf_counter()
        gpu, i = [], 0
        for x in tensors:
            flat = x.contiguous().view(-1).view(torch.uint8)
            dst = torch.empty(flat.numel(), dtype=torch.uint8, device=dev)
            for start in range(0, flat.numel(), chunk):
                n = min(chunk, flat.numel() - start)
                b = i % 2
                done[b].synchronize()                       # this staging buffer's last copy has left it
                bufs[b][:n].copy_(flat[start:start + n])
                with torch.cuda.stream(stream):
                    dst[start:start + n].copy_(bufs[b][:n], non_blocking=True)
                    done[b].record(stream)
                i += 1
            gpu.append(dst)
        torch.cuda.synchronize()
        out["pinned_staged_gib_s"] = round(gib / (time.perf_counter() - t), 2)
    out["gib"] = round(gib, 2)
    return out


def _overlap(torch, mm, comfy, path: Path) -> dict:
    import threading

    def python_work() -> float:
        t = time.perf_counter()
        acc = 0
        for i in range(PY_WORK):
            acc += i % 7
        return time.perf_counter() - t

    alone = python_work()
    box: dict = {}
    # No fingerprint inside the thread: its Python loop would compete with the main thread's for the GIL.
    thread = threading.Thread(target=lambda: box.update(_load(torch, mm, comfy, path, "card-built", False)))
    t = time.perf_counter()
    thread.start()
    beside = python_work()
    thread.join()
    return {"python_alone_s": round(alone, 3), "python_beside_load_s": round(beside, 3),
            "both_done_s": round(time.perf_counter() - t, 3), "load_in_thread": box}


def child(comfyui: Path, variant: str, path: Path) -> dict:
    torch, mm, comfy = _setup(comfyui)
    if variant == "raw":
        return _raw(torch, mm, comfy, path)
    if variant == "overlap":
        return _overlap(torch, mm, comfy, path)
    return _load(torch, mm, comfy, path, variant)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--comfyui", type=Path, required=True)
    p.add_argument("--variants", default="comfy,card-built,card-sd,raw,overlap,comfy,card-built")
    p.add_argument("--dit", type=Path, default=None,
                   help=f"the DiT file (default: <comfyui>/models/diffusion_models/{DIT})")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    comfyui = args.comfyui.resolve()
    path = (args.dit or comfyui / "models" / "diffusion_models" / DIT).resolve()
    if args.child:
        print("RESULT " + json.dumps(child(comfyui, args.child, path)), flush=True)
        return 0
    with open(path, "rb") as fh:                               # page cache warm, as after a prefetch
        while fh.read(64 * 2**20):
            pass
    results: dict = {"file_gib": round(path.stat().st_size / 2**30, 2), "runs": []}
    for variant in filter(None, args.variants.split(",")):
        proc = subprocess.run([sys.executable, "-m", "bench.dit_load", "--comfyui", str(comfyui), "--dit", str(path),
                               "--child", variant],
                              cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        res = json.loads(line[7:]) if line else {"error": (proc.stderr or proc.stdout)[-1500:]}
        results["runs"].append({"variant": variant, **res})
        print(variant, json.dumps(res), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
