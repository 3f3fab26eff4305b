"""GPU benchmark of the worker: ComfyUI started as start.sh starts it, driven through the real handler.

`python -m bench --comfyui PATH --models DIR --out DIR` (see bench/run.py). Pure-Python parts (graph variants,
statistics, the BENCHMARKS.md renderer) import neither torch nor ComfyUI, so their tests run on CI.
"""
