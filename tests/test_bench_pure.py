"""The benchmark's pure-Python parts: graph variants, statistics, the BENCHMARKS.md renderer."""

import json
from pathlib import Path

from bench import graphs, stats
from bench.report import render

WORKFLOW = Path(__file__).resolve().parent.parent / "workflows" / "flux1-dev-t2i.api.json"


def shipped():
    return json.loads(WORKFLOW.read_text())


def test_shipped_workflow_uses_fast_node_between_loader_and_shift():
    g = shipped()
    (fast,) = graphs.node_ids(g, "FluxFastPatch")
    (loader,) = graphs.node_ids(g, "FluxFastUNETLoader")      # the start-up preload's loader (preload.py)
    (shift,) = graphs.node_ids(g, "ModelSamplingFlux")
    assert g[fast]["inputs"]["model"] == [loader, 0]
    assert g[shift]["inputs"]["model"] == [fast, 0]
    assert g[fast]["inputs"]["compute"] == "default"  # output-preserving unless the env or request opts in


def test_baseline_graph_drops_fast_node_and_rewires():
    g = graphs.without_fast_path(shipped())
    assert not graphs.node_ids(g, "FluxFastPatch")
    (loader,) = graphs.node_ids(g, "UNETLoader")
    (shift,) = graphs.node_ids(g, "ModelSamplingFlux")
    assert g[shift]["inputs"]["model"] == [loader, 0]
    linked = {v[0] for n in g.values() for v in n["inputs"].values() if isinstance(v, list)}
    assert linked <= set(g)  # no dangling links


def test_baseline_graph_decodes_with_stock_tiled_node_at_the_same_tiles():
    g = shipped()
    (decode,) = graphs.node_ids(g, "FluxFastDecode")
    base = graphs.without_fast_path(g)
    assert not graphs.node_ids(base, "FluxFastDecode")
    assert base[decode]["class_type"] == "VAEDecodeTiled"   # the baseline decode, same node id and links
    assert base[decode]["inputs"] == {"samples": g[decode]["inputs"]["samples"], "vae": g[decode]["inputs"]["vae"],
                                      "tile_size": 512, "overlap": 64, "temporal_size": 64, "temporal_overlap": 8}
    assert g[decode]["class_type"] == "FluxFastDecode"      # the shipped graph itself is untouched


def test_baseline_graph_saves_with_comfyuis_own_save_node():
    g = shipped()
    (save,) = graphs.node_ids(g, "FluxFastSaveImage")
    base = graphs.without_fast_path(g)
    assert base[save] == {**g[save], "class_type": "SaveImage"}     # same inputs, title and links; ComfyUI's encoder


def test_baseline_graph_loads_with_comfyuis_own_loaders():
    g = shipped()
    base = graphs.without_fast_path(g)
    ours = {nid: n["class_type"] for nid, n in g.items() if n["class_type"].startswith("FluxFast") and "Loader" in n["class_type"]}
    assert sorted(ours.values()) == ["FluxFastDualCLIPLoader", "FluxFastUNETLoader", "FluxFastVAELoader"]
    assert {nid: base[nid]["class_type"] for nid in ours} == {nid: c[len("FluxFast"):] for nid, c in ours.items()}
    assert all(base[nid]["inputs"] == g[nid]["inputs"] for nid in ours)     # same files, same options


def test_baseline_graph_follows_chained_fast_nodes():
    g = {"1": {"class_type": "UNETLoader", "inputs": {}},
         "2": {"class_type": "FluxFastPatch", "inputs": {"model": ["1", 0]}},
         "3": {"class_type": "FluxFastPatch", "inputs": {"model": ["2", 0]}},
         "4": {"class_type": "KSampler", "inputs": {"model": ["3", 0]}}}
    assert graphs.without_fast_path(g)["4"]["inputs"]["model"] == ["1", 0]


def test_latent_output_added_on_sampler():
    g = graphs.with_latent_output(shipped())
    (save,) = graphs.node_ids(g, "SaveLatent")
    (sampler,) = graphs.node_ids(g, "KSampler")
    assert g[save]["inputs"]["samples"] == [sampler, 0]


def test_set_inputs_leaves_original_untouched():
    g = shipped()
    g2 = graphs.set_inputs(g, "KSampler", seed=7)
    assert g2[graphs.node_ids(g2, "KSampler")[0]]["inputs"]["seed"] == 7
    assert g[graphs.node_ids(g, "KSampler")[0]]["inputs"]["seed"] == 0


def test_seconds_per_step_uses_first_and_last_event():
    events = [(10.0, 1), (10.5, 3), (16.4, 28)]
    assert abs(stats.seconds_per_step(events) - 6.4 / 27) < 1e-9
    assert stats.seconds_per_step([(1.0, 5)]) is None


def test_median_and_ratio():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 2, 3]) == 2.5
    assert stats.median([]) is None
    assert stats.ratio(8.0, 4.0) == 2.0
    assert stats.ratio(None, 4.0) is None


def test_report_marks_targets_met_and_missed():
    warm = {"wall_s": 4.0, "s_per_step": 0.12, "handler_overhead_s": 0.01, "outputs_s": 0.2,
            "nodes_s": {"KSampler": 3.4}, "response_bytes": 1000}
    results = {
        "_env": {"gpu": "NVIDIA H100 80GB HBM3, 81559 MiB, 580"},
        "baseline": {"start_to_ready_s": 14.0, "summary": {"warm_median_s": 8.0, "s_per_step_median": 0.24}},
        "shipped": {"start_to_ready_s": 9.0, "warm": [warm],
                    "summary": {"warm_median_s": 4.0, "s_per_step_median": 0.14, "first_s": 5.0,
                                "handler_overhead_median_s": 0.01, "nodes_median_s": {"KSampler": 3.4}},
                    "exactness": {"vs_baseline-1step": {"image": {"max_abs_diff": 1.0, "psnr_db": 50.0}, "latent": {}},
                                  "vs_baseline": {"image": {"max_abs_diff": 2.0, "psnr_db": 45.0},
                                                  "latent": {"max_abs_diff": 0.01, "psnr_db": 50.0, "rel_l2": 0.001}}}},
        "fp8": {"error": "RuntimeError: boom"},
    }
    md = render(results)
    assert "| warm request, default path, s | shipped | 4.000 | <= 4.5 | yes |" in md
    assert "| sampling, default path, s/step | shipped | 0.140 | <= 0.13 | no (+0.01) |" in md
    assert "| fp8 | failed: RuntimeError: boom |" in md
    assert "2.00x" in md  # warm ratio vs baseline
    assert "| shipped | 28 | 2.0 | 45.0 |" in md
    assert "| shipped | 1 | 1.0 | 50.0 |" in md


def test_png_encode_bench_checks_every_level_is_lossless(tmp_path):
    from bench import png_encode

    out = tmp_path / "png.json"
    results = png_encode.main(["--width", "128", "--height", "192", "--repeats", "1", "--levels", "0,1,4,9",
                               "--out", str(out)])
    assert json.loads(out.read_text())["_env"]["size"] == "128x192"
    for name in ("random", "gradient", "texture"):
        rows = results[name]
        assert [r["level"] for r in rows] == [0, 1, 4, 9, "save node (isal 1)", "save node (zlib 1)"]
        assert all(r["pixels_identical"] for r in rows)
        if name != "random":  # noise does not compress: zlib's framing makes it a little larger than stored
            assert rows[0]["bytes"] > max(r["bytes"] for r in rows[1:])  # level 0 stores, the others compress
    assert results["gradient"][1]["bytes"] < results["random"][1]["bytes"]  # no timing assertions: CPU-dependent


def test_coldstart_report_shows_the_callers_view_and_the_phases():
    from bench.coldstart import render

    results = {
        "_env": {"gpu": "NVIDIA H200", "torch": "2.11.0+cu130", "triton": "3.6.0", "runpod": "1.12.0"},
        "_args": {"size": "832x1536", "steps": 28}, "_disk": {"gib_per_s": 1.28, "gib": 11.08, "seconds": 8.67},
        "baseline": {"shipped": False, "cold_disk": False, "ready_s": 10.35, "first_image_s": 25.58,
                     "first_request": {"queued_s": 0.0, "nodes_s": {"KSampler": 10.16}},
                     "warm": [{"wall_s": 7.79}], "phases_s": {"comfyui_listening": 9.74}},
        "shipped-colddisk": {"shipped": True, "cold_disk": True, "ready_s": 15.6, "first_image_s": 31.6,
                             "first_request": {"queued_s": 6.3, "compiled": True,
                                               "nodes_s": {"KSampler": 5.71, "FluxFastUNETLoader": 1.42}},
                             "warm": [], "compiled": [{"wall_s": 4.82}], "compiled_ready_at_s": 31.7,
                             "requests_before_compiled": 0, "requests": 3, "failures": [{"error": "x"}],
                             "compiled_median_s": 4.82,
                             "fast_path": {"compile": [{"artifacts": "9.1 MiB from the shared folder", "load_s": 0.41}],
                                           "load": {"built": "card"}},
                             "phases_s": {"prefetch_done": 12.44, "compiled_ready": 20.96}},
    }
    text = "\n".join(render(results, "Run X"))
    assert "1.28 GiB/s" in text and "NVIDIA H200" in text
    rows = [line for line in text.splitlines() if line.startswith("| shipped-colddisk |")]
    assert len(rows) == 2                                   # the caller's view, then the phases
    assert "| dropped | 15.60 | 31.60 | 5.71 (yes) | 0 | 31.70 | 1 of 4 |" in rows[0]
    assert "from the shared folder; loaded in 0.41 s | 1.42 (card) |" in rows[0]     # where the DiT was built
    assert "| 12.44 |" in rows[1] and "| 20.96 |" in rows[1]
    assert "| baseline | warm | 10.35 | 25.58 |" in text
    assert "preloaded" not in text                          # no preload ran: no table for it


def test_coldstart_report_says_where_each_preloaded_models_seconds_went():
    from bench.coldstart import render

    item = {"node": "1", "class_type": "FluxFastUNETLoader", "state": "done", "seconds": 3.59,
            "cpu": {"wall_s": 3.59, "thread_s": 2.12, "process_s": 4.35, "children_s": 1.9, "run_wait_s": 1.08,
                    "busiest_other_threads": [["native 8788", 2.24], ["flux_fast-prepare", 0.4]]}}
    results = {"_env": {}, "_args": {}, "shipped-preload": {
        "shipped": True, "cold_disk": False, "fast_path": {"preload": {"state": "ready", "items": [item]}}}}
    rows = [line for line in render(results, "Run Y") if "FluxFastUNETLoader" in line]
    assert rows == ["| shipped-preload | FluxFastUNETLoader 1 (done) | 3.59 | 2.12 | 1.08 | 4.35 | "
                    "native 8788 2.24, flux_fast-prepare 0.40 | 1.90 |"]


def test_page_cache_share_of_a_file_just_written_and_read_is_whole(tmp_path):
    from bench.coldstart import cached_fraction

    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x01" * (1 << 20))
    path.read_bytes()
    assert cached_fraction(path) == 1.0


def test_coldstart_soak_mixes_every_size_with_every_step_count_and_batch_and_refuses_wrong_images():
    import argparse

    import pytest

    from bench.coldstart import SOAK_IMAGES, SOAK_SIZES, SOAK_STEPS, check_shape, request_body

    args = argparse.Namespace(width=832, height=1536, steps=28, mixed=True)
    bodies = [request_body(i, args)["input"] for i in range(300)]
    combos = {((b["width"], b["height"]), b["num_inference_steps"], b["num_images"]) for b in bodies}
    assert len(combos) == len(SOAK_SIZES) * len(SOAK_STEPS) * len(set(SOAK_IMAGES))  # the periods never line up
    plain = request_body(3, argparse.Namespace(width=832, height=1536, steps=28, mixed=False))["input"]
    assert (plain["width"], plain["height"], plain["num_inference_steps"]) == (832, 1536, 28)
    assert "num_images" not in plain                        # the default caller's request is unchanged

    two = {"input": {"width": 1024, "height": 1024, "num_images": 2}}
    check_shape({"image": {"width": 1024, "height": 1024},
                 "images": [{"same_as": "image", "width": 1024, "height": 1024}, {"width": 1024, "height": 1024}]}, two)
    with pytest.raises(RuntimeError, match="asked for 2 image"):
        check_shape({"image": {"width": 1024, "height": 1024}, "images": [{"width": 1024, "height": 1024}]}, two)
    with pytest.raises(RuntimeError, match="1024x1024"):
        check_shape({"images": [{"width": 832, "height": 1536}]}, {"input": {"width": 1024, "height": 1024}})


def test_kernel_families_name_fused_triton_kernels_as_triton_work():
    """A profile that counted inductor's fused quantisation kernels as GEMMs (their names list `_scaled_mm`) put
    19.8 ms of Triton work into the fp8 GEMM figure (bench/aot_probe.py, 2026-12-07): fusion names say Triton."""
    from bench.kernels import family

    assert family("triton_red_fused__scaled_mm__to_copy_abs_add_amax_clamp_constant_pad_nd_div_gelu") == \
        "triton fp8 quantisation"
    assert family("triton_poi_fused__scaled_dot_product_cudnn_attention__to_copy_add_permute") == "triton"
    assert family("nvjet_sm90_qqtst_128x128_128x6_1x1_h_bz_coopA_algo2_ovscale_TNT") == "gemm"
    assert family("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16") == "attention"
    assert family("void at::native::vectorized_elementwise_kernel") == "other"
