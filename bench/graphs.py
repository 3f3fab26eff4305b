"""Graph variants the benchmark needs, derived from the shipped API-format workflow (pure Python).

Why derive instead of keeping copies: the baseline must be the shipped graph minus our fast-path node and
nothing else, so a change to the shipped workflow can never make the comparison unfair.
"""

from __future__ import annotations

import copy
from typing import Any

from comfy_nodes.flux_fast.preload import LOADERS

Graph = dict[str, dict[str, Any]]
FAST_NODE_TYPES = ("FluxFastPatch",)
# Our decode node, and the stock node (with its extra inputs at their defaults) the plain graph uses instead.
FAST_DECODE = ("FluxFastDecode", "VAEDecodeTiled", {"temporal_size": 64, "temporal_overlap": 8})
# Our save node and ComfyUI's, whose inputs it shares.
FAST_SAVE = ("FluxFastSaveImage", "SaveImage")


def without_fast_path(graph: Graph) -> Graph:
    """The plain ComfyUI graph: every FluxFastPatch node removed and its consumers wired to its model input,
    every FluxFastDecode replaced by the VAEDecodeTiled it stands in for (same tile size and overlap), every
    FluxFastSaveImage by ComfyUI's SaveImage, every FluxFast loader by the ComfyUI loader it runs (same inputs)."""
    g = copy.deepcopy(graph)
    fast_decode, stock_decode, stock_extra = FAST_DECODE
    for node in g.values():
        if node.get("class_type") == fast_decode:
            inputs = {k: v for k, v in node.get("inputs", {}).items() if k != "mode"}
            node["class_type"], node["inputs"] = stock_decode, {**inputs, **stock_extra}
        elif node.get("class_type") == FAST_SAVE[0]:
            node["class_type"] = FAST_SAVE[1]
        elif node.get("class_type") in LOADERS:
            node["class_type"] = LOADERS[node["class_type"]]
    fast = {nid: node for nid, node in g.items() if node.get("class_type") in FAST_NODE_TYPES}
    for nid in fast:
        del g[nid]

    def source(link: list) -> list:
        while isinstance(link, list) and len(link) == 2 and str(link[0]) in fast:
            link = fast[str(link[0])]["inputs"]["model"]
        return link

    for node in g.values():
        for name, value in list(node.get("inputs", {}).items()):
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in fast:
                node["inputs"][name] = source(value)
    return g


def node_ids(graph: Graph, class_type: str) -> list[str]:
    return [nid for nid, node in graph.items() if node.get("class_type") == class_type]


def with_latent_output(graph: Graph, prefix: str = "bench_latent") -> Graph:
    """Add a SaveLatent on the sampler's output, so the final latent can be compared, not only the image."""
    g = copy.deepcopy(graph)
    samplers = node_ids(g, "KSampler") or node_ids(g, "SamplerCustomAdvanced")
    if not samplers:
        raise ValueError("graph has no sampler node to take the latent from")
    new_id = str(max(int(n) for n in g if n.isdigit()) + 1)
    g[new_id] = {"class_type": "SaveLatent", "_meta": {"title": "bench latent"},
                 "inputs": {"samples": [samplers[0], 0], "filename_prefix": prefix}}
    return g


def set_inputs(graph: Graph, class_type: str, **values: Any) -> Graph:
    """Set inputs on every node of a class (used for the fixed exactness prompt and seed)."""
    g = copy.deepcopy(graph)
    for nid in node_ids(g, class_type):
        g[nid]["inputs"].update(values)
    return g
