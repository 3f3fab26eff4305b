"""The stand-in weights must look exactly like FLUX.1-dev to ComfyUI: same keys, shapes, dtypes.

The shape tables are checked without torch (CI's unit tier has none); the writer tests need torch and
safetensors and skip without them.
"""

import json
import logging
from pathlib import Path

import pytest

from tools import standins

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference" / "flux1-dev-shapes.json"


@pytest.fixture(scope="module")
def reference_shapes():
    if not REFERENCE.is_file():
        pytest.skip(f"reference shapes not available at {REFERENCE} (outside the repo, present only in the "
                    "project workspace)")
    return json.loads(REFERENCE.read_text())


def test_full_depth_tables_equal_the_published_flux1_dev_shapes(reference_shapes):
    assert standins.shape_tables(19, 38) == reference_shapes


def test_full_depth_tables_keep_the_published_key_order(reference_shapes):
    tables = standins.shape_tables(19, 38)
    for name, table in reference_shapes.items():
        assert list(tables[name]) == list(table), name


def test_default_dit_is_one_double_and_one_single_block_with_every_detection_key():
    dit = standins.standin_files()[0]
    assert dit.relpath == "diffusion_models/flux1-dev-fp8-e4m3fn.safetensors"
    blocks = {".".join(k.split(".")[:2]) for k in dit.shapes if k.split(".")[0].endswith("_blocks")}
    assert blocks == {"double_blocks.0", "single_blocks.0"}
    # what ComfyUI's detection keys on: FLUX family, 16 latent channels, guidance embedding => dev
    assert "double_blocks.0.img_attn.norm.key_norm.scale" in dit.shapes
    assert dit.shapes["img_in.weight"] == (3072, 64)
    assert "guidance_in.in_layer.weight" in dit.shapes
    assert round(dit.parameters / 1e9, 2) == 0.55


def test_full_sizes_match_the_real_models():
    files = {f.table_name: f for f in standins.standin_files(19, 38)}
    assert round(files["flux_dev"].parameters / 1e9, 2) == 11.90
    assert round(files["t5xxl"].parameters / 1e9, 2) == 4.76


def test_production_file_names_and_dtypes():
    assert [(f.relpath, f.dtype) for f in standins.standin_files()] == [
        ("diffusion_models/flux1-dev-fp8-e4m3fn.safetensors", "F8_E4M3"),
        ("text_encoders/t5xxl_fp8_e4m3fn.safetensors", "F8_E4M3"),
        ("text_encoders/clip_l.safetensors", "F16"),
        ("vae/ae.safetensors", "BF16"),
    ]


@pytest.mark.parametrize("key,kind", [
    ("double_blocks.0.img_attn.norm.query_norm.scale", "ones"),
    ("encoder.final_layer_norm.weight", "ones"),
    ("text_model.encoder.layers.3.layer_norm2.bias", "zeros"),
    ("decoder.up.1.block.0.norm1.weight", "ones"),
    ("encoder.mid.attn_1.norm.bias", "zeros"),
    ("double_blocks.0.img_mod.lin.weight", "normal"),
    ("encoder.mid.attn_1.q.bias", "normal"),
    ("shared.weight", "normal"),
])
def test_fill_kind(key, kind):
    assert standins.fill_kind(key) == kind


def test_zero_double_blocks_is_refused():
    with pytest.raises(ValueError, match="double_blocks"):
        standins.flux_dit_shapes(0, 1)


def test_cli_full_conflicts_with_explicit_block_counts():
    with pytest.raises(SystemExit):
        standins._parse_args(["--out", "x", "--full", "--double-blocks", "2"])


# ---- writer (needs torch + safetensors) -------------------------------------------------------------

SMALL = standins.StandinFile(
    "text_encoders/small.safetensors", "small", "F8_E4M3",
    {"a.weight": (64, 32), "a.layer_norm.weight": (32,), "a.layer_norm.bias": (32,), "b.bias": (3,)})
SMALL_BF16 = standins.StandinFile("vae/small.safetensors", "small", "BF16", {"x.weight": (5, 3, 3, 3)})


@pytest.fixture
def torch_and_safetensors():
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    return torch, safetensors_torch


def test_written_file_has_the_table_keys_shapes_dtype_and_norm_values(tmp_path, torch_and_safetensors):
    torch, st = torch_and_safetensors
    standins.generate(tmp_path, files=[SMALL, SMALL_BF16])
    tensors = st.load_file(tmp_path / SMALL.relpath)
    assert {k: tuple(v.shape) for k, v in tensors.items()} == SMALL.shapes
    assert {v.dtype for v in tensors.values()} == {torch.float8_e4m3fn}
    assert torch.equal(tensors["a.layer_norm.weight"].float(), torch.ones(32))
    assert torch.equal(tensors["a.layer_norm.bias"].float(), torch.zeros(32))
    weight = tensors["a.weight"].float()
    assert torch.isfinite(weight).all()
    assert 0.01 < weight.std().item() < 0.03
    vae = st.load_file(tmp_path / SMALL_BF16.relpath)
    assert vae["x.weight"].dtype == torch.bfloat16 and tuple(vae["x.weight"].shape) == (5, 3, 3, 3)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path, torch_and_safetensors):
    standins.generate(tmp_path / "a", seed=7, files=[SMALL])
    standins.generate(tmp_path / "b", seed=7, files=[SMALL])
    standins.generate(tmp_path / "c", seed=8, files=[SMALL])
    read = lambda d: (d / SMALL.relpath).read_bytes()  # noqa: E731
    assert read(tmp_path / "a") == read(tmp_path / "b")
    assert read(tmp_path / "a") != read(tmp_path / "c")


def test_rerun_with_same_config_does_nothing_and_says_so(tmp_path, torch_and_safetensors, caplog):
    assert standins.generate(tmp_path, files=[SMALL]) == [SMALL.relpath]
    before = (tmp_path / SMALL.relpath).stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="tools.standins"):
        assert standins.generate(tmp_path, files=[SMALL]) == []
    assert "nothing to do" in caplog.text
    assert (tmp_path / SMALL.relpath).stat().st_mtime_ns == before
    manifest = json.loads((tmp_path / standins.MANIFEST_NAME).read_text())
    assert manifest["files"][SMALL.relpath]["config"]["seed"] == 0


def test_changed_seed_or_truncated_file_is_regenerated(tmp_path, torch_and_safetensors):
    standins.generate(tmp_path, files=[SMALL])
    assert standins.generate(tmp_path, seed=1, files=[SMALL]) == [SMALL.relpath]
    path = tmp_path / SMALL.relpath
    path.write_bytes(path.read_bytes()[:100])
    assert standins.generate(tmp_path, seed=1, files=[SMALL]) == [SMALL.relpath]
    assert not list(tmp_path.rglob("*.partial"))
