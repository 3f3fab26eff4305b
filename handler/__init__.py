"""Runpod worker that serves FLUX.1-dev text-to-image through a headless ComfyUI.

Data flows one way: job input -> validated request (inputs) -> filled workflow (workflow) -> ComfyUI
(comfy_client) -> outputs (outputs) -> response (job). `python -m handler` starts the worker.
"""
