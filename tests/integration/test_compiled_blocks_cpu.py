"""The serving side of the compiled blocks (comfy_nodes/flux_fast/compiled_blocks.py) against ComfyUI's own FLUX model
class, on the CPU, in-process: what a caller would notice is the image, so each test compares the compiled model
call with the eager one.

One AOTInductor build of a small FLUX (ComfyUI's classes, hidden size 256) serves every test; it runs through
aot_build.py as a worker's child process would run it. Needs torch and a ComfyUI checkout (COMFYUI_PATH).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the compiled blocks need torch (the integration environment)")

REPO = Path(__file__).resolve().parents[2]
CONFIG = dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
              hidden_size=256, mlp_ratio=4.0, num_heads=4, depth=2, depth_single_blocks=2, axes_dim=[16, 24, 24],
              theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True, txt_ids_dims=[])


@pytest.fixture(scope="module")
def comfy(comfy_in_process):
    from comfy.ldm.flux.model import Flux

    return Flux


def _model(Flux, seed: int = 0):
    import comfy.ops

    model = Flux(**CONFIG, dtype=torch.bfloat16, device="cpu", operations=comfy.ops.manual_cast)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
            p.requires_grad_(False)
    return model.eval()


def _inputs(batch: int, height: int, width: int, txt: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 16, height // 8, width // 8, generator=g).to(torch.bfloat16)
    ctx = torch.randn(batch, txt, 4096, generator=g).to(torch.bfloat16)
    y = torch.randn(batch, 768, generator=g).to(torch.bfloat16)
    t = torch.full((batch,), 0.6, dtype=torch.bfloat16)
    return (x, t, ctx), {"y": y, "guidance": torch.full((batch,), 3.5, dtype=torch.bfloat16)}


def _compiled(Flux, folder: Path, env_extra: dict | None = None):
    from flux_fast import policy
    from flux_fast.compiled_blocks import CompiledBlocks

    plan = policy.make_plan("bf16", True, "auto", {"FLUX_FAST_ON_CPU": "1"})
    env = {"FLUX_FAST_BAKED_ARTIFACTS_DIR": str(folder), **(env_extra or {})}
    return CompiledBlocks(plan, "bf16", torch.device("cpu"), torch.bfloat16, Flux, CONFIG, "test", env=env)


def _run(compiled, model, args, kwargs):
    compiled.begin_run()
    try:
        with torch.inference_mode():
            return compiled.model_call(lambda *a, **k: model(*a, **k), model, args, kwargs)
    finally:
        compiled.end_run()


def _rel(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def _build(spec: dict, comfyui_path: Path, work: Path) -> tuple[dict, dict]:
    """aot_build.py in a child process, as a worker runs it: (its report, {list: Package})."""
    from flux_fast.aot_build import read_build

    work.mkdir(parents=True, exist_ok=True)
    (work / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, str(REPO / "comfy_nodes" / "flux_fast" / "aot_build.py"), "--comfyui",
                           str(comfyui_path), "--spec", str(work / "spec.json"), "--out", str(work / "out")],
                          capture_output=True, text=True, timeout=900, cwd=comfyui_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return read_build(work / "out")


@pytest.fixture(scope="module")
def baked(comfy, comfyui_path, tmp_path_factory):
    """The packages for the small model's served state, built by aot_build.py in a child process, in a baked folder."""
    from flux_fast import compiled_blocks
    from flux_fast.artifacts import ArtifactFolder

    Flux = comfy
    model = _model(Flux)
    compiled = _compiled(Flux, tmp_path_factory.mktemp("unused"))
    spec = compiled._spec(model)
    spec["comfy_argv"] = ["--cpu"]            # the server's flags; this process is pytest
    key = compiled._key(spec)
    report, packages = _build(spec, comfyui_path, tmp_path_factory.mktemp("build"))
    # the child loaded and ran each package against the eager block before reporting success
    assert all(0 <= e["self_test_rel_l2"] < 0.05 for e in report["lists"].values()), report
    folder = tmp_path_factory.mktemp("baked")
    ArtifactFolder(folder, trusted=True).write(key, packages)
    compiled_blocks._PACKAGES.clear()
    return folder, key


@pytest.mark.parametrize("batch,height,width,txt", [(1, 256, 128, 16), (2, 128, 384, 77), (3, 64, 64, 5)])
def test_any_batch_size_and_prompt_length_runs_compiled_and_matches_eager(comfy, baked, batch, height, width, txt):
    model = _model(comfy)
    args, kwargs = _inputs(batch, height, width, txt)
    with torch.inference_mode():
        eager = model(*args, **kwargs)
    compiled = _compiled(comfy, baked[0])
    out = _run(compiled, model, args, kwargs)
    assert compiled.state == "compiled", compiled.status()
    assert compiled.counts == {"compiled": 4, "eager": 0}          # 2 double + 2 single blocks, one model call
    assert _rel(out, eager) < 0.02, _rel(out, eager)                # bf16 rounding, not another image
    assert compiled.status()["traced_in_process"] == 0


def test_replaced_weights_are_used_at_once_and_a_block_with_weight_functions_runs_eager(comfy, baked):
    model = _model(comfy)
    args, kwargs = _inputs(1, 128, 128, 12)
    compiled = _compiled(comfy, baked[0])
    _run(compiled, model, args, kwargs)
    # a LoRA as ComfyUI applies it to a loaded model: a new Parameter in place of the old one
    linear = model.double_blocks[1].img_attn.qkv
    linear.weight = torch.nn.Parameter(linear.weight.detach() * 1.5, requires_grad=False)
    with torch.inference_mode():
        eager = model(*args, **kwargs)
    out = _run(compiled, model, args, kwargs)
    assert _rel(out, eager) < 0.02 and compiled.counts["eager"] == 0
    # a LoRA applied per call (a weight function, as in ComfyUI's low-VRAM patching): that block runs eager, alone
    model.single_blocks[0].linear2.weight_function = [lambda w: w * 0.5]
    with torch.inference_mode():
        eager = model(*args, **kwargs)
    before = dict(compiled.counts)
    out = _run(compiled, model, args, kwargs)
    assert compiled.counts["eager"] - before["eager"] == 1 and compiled.counts["compiled"] - before["compiled"] == 3
    assert _rel(out, eager) < 0.02


def test_a_call_the_package_was_not_built_for_runs_the_eager_block(comfy, baked):
    model = _model(comfy)
    args, kwargs = _inputs(1, 128, 128, 12)
    calls = []
    compiled = _compiled(comfy, baked[0])
    patches = {"attn1_output_patch": [lambda attn, extra: calls.append(1) or attn * 0.5]}
    kwargs = {**kwargs, "transformer_options": {"patches": patches}}
    with torch.inference_mode():
        eager = model(*args, **kwargs)
    calls.clear()
    out = _run(compiled, model, args, kwargs)
    assert len(calls) == 4 and compiled.counts["compiled"] == 0          # every block ran the caller's patch
    assert torch.equal(out, eager)


def test_a_package_that_computes_wrong_is_set_aside_and_the_model_serves_eager(comfy, baked, monkeypatch):
    from flux_fast import aot_build, compiled_blocks

    folder, key = baked
    scratch = folder.parent / "wrong"
    scratch.mkdir(exist_ok=True)
    for f in folder.iterdir():
        (scratch / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(aot_build, "TOLERANCE", 0.0)    # bf16 rounding now counts as "computes wrong"
    monkeypatch.setattr(compiled_blocks, "_PACKAGES", {})
    monkeypatch.setattr(compiled_blocks, "_FAILED", {})
    model = _model(comfy)
    args, kwargs = _inputs(1, 128, 128, 12)
    with torch.inference_mode():
        eager = model(*args, **kwargs)
    compiled = _compiled(comfy, scratch)
    out = _run(compiled, model, args, kwargs)
    assert compiled.state == "failed" and "differs from the eager block" in compiled.reason, compiled.status()
    assert torch.equal(out, eager)                                  # the job still got its image
    assert (scratch / f"{key}.json.rejected").exists() and not (scratch / f"{key}.json").exists()


def test_fp8_stored_weights_a_small_cards_state_get_their_own_package_and_match_eager(comfy, comfyui_path, tmp_path):
    """Where the bf16 upcast does not fit (24 GB cards), the weights stay fp8 and ComfyUI casts each one per call:
    another model state, so another key and package, which casts inside the compiled block."""
    # Inductor's C++ backend emits fp8 pointer casts g++ rejects (torch 2.11: "expected primary-expression before
    # 'const'" at `(const at::Float8_e4m3fn*)`); Triton on a GPU compiles them. The spec and key half runs here.
    from flux_fast.artifacts import ArtifactFolder

    model = _model(comfy)
    with torch.no_grad():
        for block in [*model.double_blocks, *model.single_blocks]:
            for module in block.modules():
                if isinstance(module, torch.nn.Linear):
                    module.weight.data = module.weight.data.to(torch.float8_e4m3fn)
    compiled = _compiled(comfy, tmp_path / "baked")
    spec = compiled._spec(model)
    assert spec["lists"]["double_blocks"]["params"]["img_attn.qkv.weight"] == "float8_e4m3fn"
    spec["comfy_argv"] = ["--cpu"]
    assert compiled._key(spec) != _compiled(comfy, tmp_path)._key(_compiled(comfy, tmp_path)._spec(_model(comfy)))
    if not torch.cuda.is_available():
        pytest.skip("fp8-stored package: inductor's CPU backend cannot compile fp8 loads; built and run on a GPU only")
    _, packages = _build(spec, comfyui_path, tmp_path / "build")
    ArtifactFolder(tmp_path / "baked", trusted=True).write(compiled._key(spec), packages)
    args, kwargs = _inputs(1, 128, 256, 20)
    with torch.inference_mode():
        eager = model(*args, **kwargs)
    out = _run(compiled, model, args, kwargs)
    assert compiled.state == "compiled" and compiled.counts == {"compiled": 4, "eager": 0}, compiled.status()
    assert _rel(out, eager) < 0.02, _rel(out, eager)


def test_a_build_that_fails_is_noted_so_the_next_worker_serves_eager_without_building_it_again(
        comfy, tmp_path, monkeypatch):
    """A real failing build: the child is told the server attends with a function it does not have, so it refuses
    to build (as it would for any build that cannot compute what the server does). The first worker serves eager and
    notes the failure, signed, in the shared folder; the next worker reads the note and starts no build."""
    from flux_fast import compiled_blocks

    for name in ("_PACKAGES", "_FAILED", "_BUILDS"):
        monkeypatch.setattr(compiled_blocks, name, {})
    real_spec = compiled_blocks.CompiledBlocks._spec

    def foreign_attention(self, diffusion_model):
        spec = real_spec(self, diffusion_model)
        return spec and {**spec, "attention": "attention_this_process_lacks", "comfy_argv": ["--cpu"]}

    monkeypatch.setattr(compiled_blocks.CompiledBlocks, "_spec", foreign_attention)
    shared = tmp_path / "shared"
    env = {"FLUX_FAST_ARTIFACTS_DIR": str(shared), "FLUX_FAST_ARTIFACTS_SECRET": "endpoint-secret"}
    model = _model(comfy)
    args, kwargs = _inputs(1, 128, 128, 12)
    with torch.inference_mode():
        eager = model(*args, **kwargs)
    first = _compiled(comfy, tmp_path / "no-baked", env)
    deadline = time.monotonic() + 600
    while True:
        out = _run(first, model, args, kwargs)
        assert torch.equal(out, eager)                               # every job gets its image meanwhile
        if first.state == "failed" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert first.state == "failed" and "attends with attention_this_process_lacks" in first.reason, first.status()
    assert "RuntimeError: the server attends with" in first.reason, first.reason   # the error itself, not torch's advice
    assert "(exit code 1)" in first.reason, first.reason       # how the child ended: a crash would name its signal
    assert [p.name for p in shared.glob("*.failed.json")] == [f"{first.wanted}.failed.json"]

    # the next worker of the endpoint: a fresh process, the same volume and secret
    for name in ("_PACKAGES", "_FAILED", "_BUILDS"):
        monkeypatch.setattr(compiled_blocks, name, {})
    second = _compiled(comfy, tmp_path / "no-baked", env)
    out = _run(second, model, args, kwargs)
    assert torch.equal(out, eager)
    assert second.state == "failed" and "an earlier worker's build" in second.reason, second.status()
    assert compiled_blocks._BUILDS == {}                              # nothing started


def test_packages_a_worker_died_loading_are_set_aside_by_the_next_worker_instead_of_crashing_it(
        comfy, baked, tmp_path, monkeypatch):
    """A marker older than the load grace says the last worker died inside the load (a package that crashes the
    serving process): the next worker must not load those packages (a crash loop across the endpoint), must serve
    the image eager, and must note the failure so later workers do not rebuild the same thing for a while. A fresh
    marker (a worker loading right now) blocks nothing, and a worker that loaded leaves no marker."""
    from flux_fast import artifacts, compiled_blocks
    from flux_fast.artifacts import ArtifactFolder

    folder, key = baked
    shared = tmp_path / "shared"
    env = {"FLUX_FAST_ARTIFACTS_DIR": str(shared), "FLUX_FAST_ARTIFACTS_SECRET": "endpoint-secret"}
    packages, _ = ArtifactFolder(folder, trusted=True).read(key)
    volume = ArtifactFolder(shared, trusted=False, secret=b"endpoint-secret")
    volume.write(key, packages)
    model = _model(comfy)
    args, kwargs = _inputs(1, 128, 128, 12)
    with torch.inference_mode():
        eager = model(*args, **kwargs)

    for name in ("_PACKAGES", "_FAILED", "_BUILDS"):
        monkeypatch.setattr(compiled_blocks, name, {})
    volume.mark_loading(key, time.time() - 5)                          # another worker, loading right now
    alive = _compiled(comfy, tmp_path / "no-baked", env)
    _run(alive, model, args, kwargs)
    assert alive.state == "compiled", alive.status()
    assert len(list(shared.glob("*.loading.*.json"))) == 1              # its own marker gone, the other's kept

    for name in ("_PACKAGES", "_FAILED", "_BUILDS"):
        monkeypatch.setattr(compiled_blocks, name, {})
    for marker in shared.glob("*.loading.*.json"):
        marker.unlink()
    volume.mark_loading(key, time.time() - artifacts.LOAD_GRACE_S - 30)  # left by a worker that died loading
    nxt = _compiled(comfy, tmp_path / "no-baked", env)
    out = _run(nxt, model, args, kwargs)
    assert nxt.state == "failed" and "died while loading" in nxt.reason, nxt.status()
    assert torch.equal(out, eager)                                       # the job still got its image
    assert (shared / f"{key}.json.rejected").exists() and not (shared / f"{key}.json").exists()
    assert (shared / f"{key}.failed.json").exists() and compiled_blocks._BUILDS == {}


def test_packages_built_on_a_host_whose_cpu_shows_other_features_are_not_loaded(comfy, baked, tmp_path, monkeypatch):
    """inductor compiles a package's launcher with -march=native: loaded on a host whose CPU lacks an instruction the
    build host had (AVX-512, AMX), it can die with SIGILL. One GPU model runs on hosts with different CPUs, so a worker
    whose CPU shows other features serves eager and builds its own packages instead of loading these."""
    from flux_fast import compiled_blocks

    folder, key = baked
    for name in ("_PACKAGES", "_FAILED", "_BUILDS"):
        monkeypatch.setattr(compiled_blocks, name, {})
    started = []

    class BuildStarted:                   # the build itself is another test's: here only which key it is for
        def __init__(self, spec, build_key):
            started.append(build_key)

        def poll(self):
            return "running"

    monkeypatch.setattr(compiled_blocks, "_Build", BuildStarted)
    model = _model(comfy)
    args, kwargs = _inputs(1, 128, 128, 12)
    with torch.inference_mode():
        eager = model(*args, **kwargs)

    same_host = _compiled(comfy, folder)
    _run(same_host, model, args, kwargs)
    assert same_host.state == "compiled" and started == [], same_host.status()

    for name in ("_PACKAGES", "_FAILED", "_BUILDS"):
        monkeypatch.setattr(compiled_blocks, name, {})
    real = compiled_blocks.host_cpu_features()
    monkeypatch.setattr(compiled_blocks, "host_cpu_features", lambda: real + "-without-avx512")
    other_host = _compiled(comfy, folder)
    out = _run(other_host, model, args, kwargs)
    assert torch.equal(out, eager)                                    # eager, not the other host's package
    assert other_host.state == "building" and started and started[0] != key, other_host.status()


def test_the_host_cpu_name_follows_the_features_the_cpu_shows_not_their_order(comfy, tmp_path):
    from flux_fast.compiled_blocks import host_cpu_features

    def named(flags: str) -> str:
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n"
                        f"flags\t\t: something else\n")
        return host_cpu_features(info)

    assert named("fpu sse2 avx2 avx512f") == named("avx512f avx2 fpu sse2")
    assert named("fpu sse2 avx2 avx512f") != named("fpu sse2 avx2")
    assert host_cpu_features(tmp_path / "missing").endswith("-unknown")


def test_a_gpu_package_load_does_not_probe_the_cpu_vector_isa():
    """The probe compiles and runs a g++ program per ISA, each run importing torch: 19-31 s on an H100 machine, which
    the first compiled image waited for. For a GPU package it is skipped; for a CPU package it still runs."""
    code = (
        "import importlib.util, sys, subprocess\n"
        f"spec = importlib.util.spec_from_file_location('aot_build', {str(REPO / 'comfy_nodes/flux_fast/aot_build.py')!r})\n"
        "aot_build = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(aot_build)\n"
        "aot_build.skip_isa_probe(sys.argv[1])\n"
        "probes = []\n"
        "real = subprocess.check_call\n"
        "subprocess.check_call = lambda *a, **k: (probes.append(a), real(*a, **k))[1]\n"
        "from torch._inductor import cpu_vec_isa\n"
        "isa = cpu_vec_isa.pick_vec_isa()\n"
        "print(len(probes), str(isa) or 'none')\n")
    gpu = subprocess.run([sys.executable, "-c", code, "cuda"], capture_output=True, text=True, timeout=600)
    assert gpu.returncode == 0, gpu.stderr[-2000:]
    assert gpu.stdout.split() == ["0", "INVALID_VEC_ISA"], gpu.stdout
    cpu = subprocess.run([sys.executable, "-c", code, "cpu"], capture_output=True, text=True, timeout=600)
    assert cpu.returncode == 0, cpu.stderr[-2000:]
    if "avx2" in Path("/proc/cpuinfo").read_text():
        assert int(cpu.stdout.split()[0]) >= 1, cpu.stdout             # the CPU path still asks the compiler


def test_the_cudnn_first_attention_hook_computes_comfyuis_pytorch_attention_and_leaves_others_alone(comfy):
    """Hopper cards trace FLUX's attention through ComfyUI's override hook with cuDNN's kernel preferred. For
    ComfyUI's PyTorch attention the hook must give what it gives (on the CPU both run the CPU kernel); any other
    attention function (here the CPU server's sub-quadratic one) is ComfyUI's own, untouched."""
    from comfy.ldm.flux.math import attention
    from comfy.ldm.modules.attention import attention_pytorch
    from flux_fast.aot_build import cudnn_first_attention

    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 40, 64, generator=g).to(torch.bfloat16) for _ in range(3))
    pe = torch.randn(2, 1, 40, 32, 2, 2, generator=g)
    calls = []

    def counted(func, *args, **kwargs):
        calls.append(func.__name__)
        return cudnn_first_attention(func, *args, **kwargs)

    with torch.inference_mode():
        plain = attention(q, k, v, pe=pe, transformer_options={})
        hooked = attention(q, k, v, pe=pe, transformer_options={"optimized_attention_override": counted})
        assert calls == ["attention_sub_quad"]                 # ComfyUI handed FLUX's call to the hook
        assert torch.equal(hooked, plain)                       # and the hook left sub-quad attention as it is
        pytorch = attention_pytorch(q, k, v, 4, skip_reshape=True)
        cudnn_first = cudnn_first_attention(attention_pytorch.__wrapped__, q, k, v, 4, skip_reshape=True,
                                            transformer_options={})
    assert cudnn_first.shape == pytorch.shape == (2, 40, 4 * 64)
    assert _rel(cudnn_first, pytorch) < 0.01


@pytest.mark.parametrize("sdpa,argv,built_with,why", [
    ("cudnn_first", ["--cpu", "--use-pytorch-cross-attention"], "cudnn_first", None),
    ("cudnn_first", ["--cpu"], "comfy", "applies to ComfyUI's PyTorch attention"),
    ("a_kernel_this_build_lacks", ["--cpu"], "comfy", "unknown sdpa choice")])
def test_a_build_traces_the_attention_the_spec_asks_for_or_falls_back_to_comfyuis(comfy, comfyui_path, tmp_path,
                                                                                  sdpa, argv, built_with, why):
    """The spec's `sdpa` reaches the traced block (checked against ComfyUI's eager block by the child itself); a
    choice the child cannot build with gives ComfyUI's own attention and says why, instead of failing the build."""
    model = _model(comfy)
    compiled = _compiled(comfy, tmp_path / "unused")
    attention = "attention_pytorch" if "--use-pytorch-cross-attention" in argv else "attention_sub_quad"
    spec = {**compiled._spec(model), "comfy_argv": argv, "attention": attention, "sdpa": sdpa}
    report, packages = _build(spec, comfyui_path, tmp_path / "build")
    assert {entry["sdpa"] for entry in report["lists"].values()} == {built_with}, report
    assert all(0 <= e["self_test_rel_l2"] < 0.05 for e in report["lists"].values()), report
    assert set(packages) == {"double_blocks", "single_blocks"}
    if why:
        assert set(report["fell_back"]) == {"double_blocks", "single_blocks"}
        assert all(why in reason for reason in report["fell_back"].values()), report["fell_back"]
    else:
        assert "fell_back" not in report


@pytest.mark.parametrize("stored", ["bf16", "fp8"], ids=["bf16-weights", "fp8-weights"])
def test_fp8_compute_blocks_export_for_any_batch_and_prompt_length(comfy, tmp_path, stored):
    """FLUX_FAST_COMPUTE=fp8_rowwise: ComfyUI's real FLUX blocks, with the fp8 matmul in their Linears, export with
    the batch and token counts still dynamic, as the build exports them. On an H100 the fp8 build failed right here (a
    guard `batch % 16 != 0` from the matmul's row padding, which no dynamic batch range satisfies) and every request
    ran eager, slower than plain ComfyUI. Compiling fp8 needs a GPU (Triton, `_scaled_mm`); exporting does not."""
    from comfy.ldm.modules import attention
    from flux_fast import aot_build

    model = _model(comfy)
    if stored == "fp8":                      # the 24 GB card's state: weights kept fp8, the matmul reads them as they are
        with torch.no_grad():
            for block in [*model.double_blocks, *model.single_blocks]:
                for module in block.modules():
                    if isinstance(module, torch.nn.Linear):
                        module.weight.data = module.weight.data.to(torch.float8_e4m3fn)
    spec = {**_compiled(comfy, tmp_path)._spec(model), "compute": "fp8_rowwise"}
    picked = attention.optimized_attention.__name__
    for name, block in aot_build.one_block_each(spec).items():
        program, acts, dynamic = aot_build.export_block(name, block, "comfy", picked, torch.bfloat16, torch.device("cpu"))
        assert any("_scaled_mm" in str(node.target) for node in program.graph.nodes), f"{name}: no fp8 matmul traced"
        inputs = [node.meta["val"] for node in program.graph.nodes if node.op == "placeholder"][:len(acts)]
        for value, dims in zip(inputs, dynamic):
            for dim in dims:                 # batch and tokens stay symbolic: one package for every request's shape
                assert not isinstance(value.shape[dim], int), (name, dim, value.shape)


def test_a_failed_builds_reason_is_the_error_it_raised_not_the_advice_printed_after_it():
    """What `action: info` says of a failed build. The H100 fp8 build's reason was the log's last 400 characters,
    which began mid-word after the error ("atch = L['inputs']...") and ended in torch's advice to try draft_export."""
    from flux_fast.compiled_blocks import reason_from_log

    log = """flux_fast build: exporting double_blocks
Traceback (most recent call last):
  File "aot_build.py", line 400, in <module>
torch._dynamo.exc.UserError: Constraints violated (batch)! For more information, run with TORCH_LOGS="+dynamic".
  - Not all values of batch = L['inputs'][0].size()[0] in the specified range batch <= 64 satisfy the generated guard

The error above occurred when calling torch.export.export. If you would like to view some more information about
this error, and get a list of all other errors that may occur in your export call, use draft_export().
"""
    reason = reason_from_log(log)
    assert reason.startswith("torch._dynamo.exc.UserError: Constraints violated (batch)!"), reason
    assert "Not all values of batch" in reason and "draft_export" not in reason and len(reason) <= 400
    # a native crash leaves no Python exception: the last lines, whatever they are
    assert reason_from_log("loading package\ncompiling single_blocks\n") == "loading package | compiling single_blocks"
    assert reason_from_log("") == "no output"
