"""The DiT built on the card (flux_fast/on_card.py), against ComfyUI's own UNETLoader and model code.

What a user would notice if it went wrong: a tensor of the model that ComfyUI's code creates on the host whatever the
device context says (it would stay on the host while the rest sits on the card: a device mismatch at the first
step, or a silent move at every step), weights other than the file's, or a job that fails where ComfyUI's own
loader would have loaded. No GPU here: the card is the meta device, which takes a tensor's shape and dtype but no
values, so every tensor the build creates must land there; the speed is measured on the GPU (bench.dit_load,
bench.coldstart's shipped-hostload; BENCHMARKS.md). Needs a ComfyUI checkout (COMFYUI_PATH).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="ComfyUI's model code needs torch (the integration environment)")

REPO = Path(__file__).resolve().parents[2]
CARD = torch.device("meta")
# load_state_dict into the meta "card" copies nothing, and PyTorch says so once per tensor.
pytestmark = pytest.mark.filterwarnings("ignore:.*copying from a non-meta parameter:UserWarning")


@pytest.fixture(scope="module")
def unet(comfy_in_process, standins_dir: Path):
    """The shipped workflow's DiT loader inputs, and a `run` that calls ComfyUI's UNETLoader with them."""
    import folder_paths
    import nodes
    from flux_fast import on_card
    from flux_fast.preload import LOADERS

    folder_paths.add_model_folder_path("diffusion_models", str(standins_dir / "diffusion_models"))
    graph = json.loads((REPO / "workflows" / "flux1-dev-t2i.api.json").read_text())
    (inputs,) = [n["inputs"] for n in graph.values() if n["class_type"] == "FluxFastUNETLoader"]
    comfy_loader = nodes.NODE_CLASS_MAPPINGS[LOADERS["FluxFastUNETLoader"]]

    def run():
        return getattr(comfy_loader(), comfy_loader.FUNCTION)(**inputs)

    return on_card, run, inputs


def _tensors(patcher) -> dict[str, torch.Tensor]:
    model = patcher.model
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def test_every_tensor_of_the_dit_is_created_on_the_device_it_is_built_under(unet):
    on_card, run, inputs = unet
    host = _tensors(run()[0])
    (patcher,) = on_card.build(run, CARD, inputs["unet_name"])
    card = _tensors(patcher)
    assert {t.device.type for t in host.values()} == {"cpu"}
    left_behind = sorted(name for name, t in card.items() if t.device != CARD)
    assert not left_behind, f"created on the host despite the device context: {left_behind[:10]}"
    assert {n: (t.dtype, tuple(t.shape)) for n, t in card.items()} == \
        {n: (t.dtype, tuple(t.shape)) for n, t in host.items()}, "the card build is not the model ComfyUI builds"


def test_a_build_that_fails_on_the_card_gives_way_to_comfyuis_own_load(unet, caplog):
    on_card, _, inputs = unet

    def out_of_memory():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 90.00 MiB")

    with caplog.at_level("WARNING", logger="flux_fast.on_card"):
        assert on_card.build(out_of_memory, CARD, inputs["unet_name"]) is None
    assert "building flux1-dev-fp8-e4m3fn.safetensors on the card failed (OutOfMemoryError" in caplog.text


def test_on_the_cpu_the_node_loads_exactly_what_comfyuis_loader_loads(unet):
    """The node's path where no card is there (a CPU ComfyUI, as in this tier): ComfyUI's loader, same weights."""
    on_card, run, inputs = unet
    ours = _tensors(on_card.load(run, inputs)[0])
    assert on_card.last() == {"model": inputs["unet_name"], "built": "host", "reason": "no GPU", "seconds": None}
    theirs = _tensors(run()[0])
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k].view(torch.uint8) if ours[k].dtype == torch.float8_e4m3fn else ours[k],
                           theirs[k].view(torch.uint8) if theirs[k].dtype == torch.float8_e4m3fn else theirs[k])
               for k in ours)


def test_the_bench_that_measures_it_loads_the_same_weights_both_ways(comfyui_path: Path, comfyui_python: str,
                                                                     standins_dir: Path, tmp_path: Path):
    """bench.dit_load (run on the GPU for BENCHMARKS.md) fingerprints what each way loaded; on this CPU both ways
    are ComfyUI's host build, so the fingerprints must agree and each way must report its timings."""
    import subprocess

    out = tmp_path / "dit-load.json"
    done = subprocess.run([comfyui_python, "-m", "bench.dit_load", "--comfyui", str(comfyui_path), "--dit",
                           str(standins_dir / "diffusion_models" / "flux1-dev-fp8-e4m3fn.safetensors"),
                           "--variants", "comfy,card-built", "--out", str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert [r["variant"] for r in runs] == ["comfy", "card-built"] and not any("error" in r for r in runs), runs
    assert runs[0]["fingerprint"] == runs[1]["fingerprint"]
    assert all(r["load_s"] > 0 and r["param_devices"] == ["cpu"] for r in runs)
