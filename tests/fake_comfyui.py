"""A tiny stand-in for ComfyUI's HTTP + websocket API, for the faults a real ComfyUI cannot produce on demand.

Each `mode` produces exactly one behaviour: "ok" (a normal run), "hang" (the prompt never finishes),
"drop_ws" (the websocket closes mid-run; the history appears later), "no_ws" (websocket refused),
"exec_error" (a node raises), "validation" (HTTP 400 with node_errors), "wedged" (like "hang", and the
interrupt has no effect: the prompt stays running), "prompt_500" (POST /prompt answers HTTP 500, as ComfyUI does
when a node's validation code raises), "upload_400" (POST /upload/image refuses), "resend_executed" (an output node's `executed` arrives twice, as
ComfyUI >= 0.30 re-sends cached intermediate-output nodes at the end of a run). Real ComfyUI behaviour (graphs,
models, validation of real workflows) is tested against a real ComfyUI in tests/integration.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid

from aiohttp import web
from PIL import Image

MODEL_FILES = {
    ("UNETLoader", "unet_name"): ["flux1-dev-fp8-e4m3fn.safetensors"],
    ("DualCLIPLoader", "clip_name1"): ["clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"],
    ("DualCLIPLoader", "clip_name2"): ["clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"],
    ("VAELoader", "vae_name"): ["ae.safetensors"],
}
# The shipped workflows' loaders (comfy_nodes/flux_fast/loaders.py) list what ComfyUI's own loaders list.
MODEL_FILES.update({(f"FluxFast{cls}", name): files for (cls, name), files in list(MODEL_FILES.items())})


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeComfyUI:
    def __init__(self, object_info: dict, mode: str = "ok"):
        self.object_info = object_info
        self.mode = mode
        self.prompts: list[dict] = []
        self.interrupts: list[dict] = []
        self.queue_deletes: list[dict] = []
        self.history: dict[str, dict] = {}
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, bytes] = {}
        self.history_reads = 0
        self.history_deletes: list[list[str]] = []
        self.prompt_ids: list[str] = []  # of the prompts queued (accepted)
        self.running: set[str] = set()  # prompt ids GET /queue reports as running
        self.port = 0  # chosen by the OS when the server binds (no race with other processes)
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # -- lifecycle
    def start(self) -> "FakeComfyUI":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(60)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(60)
            self._runner = None

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/features", self._empty_json)
        app.router.add_get("/object_info", self._object_info_all)
        app.router.add_get("/object_info/{cls}", self._object_info_one)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/system_stats", self._system_stats)
        app.router.add_get("/models", self._model_folders)
        app.router.add_get("/models/{folder}", self._models)
        app.router.add_post("/prompt", self._prompt)
        app.router.add_get("/history/{pid}", self._history)
        app.router.add_post("/history", self._history_post)
        app.router.add_get("/queue", self._queue_get)
        app.router.add_post("/interrupt", self._interrupt)
        app.router.add_post("/queue", self._queue)
        app.router.add_get("/view", self._view)
        app.router.add_post("/upload/image", self._upload)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    # -- routes
    async def _empty_json(self, request):
        return web.json_response({})

    async def _object_info_all(self, request):
        return web.json_response(self.object_info)

    async def _system_stats(self, request):
        return web.json_response({"system": {"comfyui_version": "0.3.64", "pytorch_version": "2.14.1", "python_version": "3.11.7"},
                                  "devices": [{"name": "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync", "type": "cuda",
                                               "vram_total": 85e9, "vram_free": 80e9}]})

    async def _model_folders(self, request):
        return web.json_response(["checkpoints", "diffusion_models", "text_encoders", "vae", "loras"])

    async def _models(self, request):
        folder = request.match_info["folder"]
        files = {"diffusion_models": ["flux1-dev-fp8-e4m3fn.safetensors"], "vae": ["ae.safetensors"],
                 "text_encoders": ["clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"]}
        return web.json_response(files.get(folder, []))

    async def _object_info_one(self, request):
        cls = request.match_info["cls"]
        return web.json_response({cls: self.object_info[cls]} if cls in self.object_info else {})

    async def _ws(self, request):
        if self.mode == "no_ws":
            return web.Response(status=404)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets[request.query.get("clientId", "")] = ws
        await ws.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}})
        async for _ in ws:
            pass
        return ws

    async def _prompt(self, request):
        body = await request.json()
        self.prompts.append(body)
        if self.mode == "prompt_500":
            return web.Response(status=500, text="500 Internal Server Error\n\nServer got itself in trouble")
        if self.mode == "validation":
            return web.json_response({
                "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
                "node_errors": {"1": {"class_type": body["prompt"]["1"]["class_type"], "dependent_outputs": ["11"], "errors": [{
                    "type": "value_not_in_list", "message": "Value not in list", "details": "unet_name: 'x' not in (list of length 1)",
                    "extra_info": {"input_name": "unet_name", "input_config": None, "received_value": "x"}}]}},
            }, status=400)
        prompt_id = str(uuid.uuid4())
        self.prompt_ids.append(prompt_id)
        asyncio.ensure_future(self._execute(prompt_id, body))
        return web.json_response({"prompt_id": prompt_id, "number": len(self.prompts), "node_errors": {}})

    async def _execute(self, prompt_id: str, body: dict) -> None:
        ws = self.sockets.get(body.get("client_id", ""))

        async def send(kind, data):
            if ws is not None and not ws.closed:
                await ws.send_json({"type": kind, "data": {**data, "prompt_id": prompt_id}})

        graph = body["prompt"]
        sampler = next((nid for nid, n in graph.items() if n["class_type"] == "KSampler"), "9")
        await send("execution_start", {})
        await send("execution_cached", {"nodes": []})
        if self.mode == "drop_ws" and ws is not None:
            await ws.close()
        await send("executing", {"node": sampler})
        steps = int(graph.get(sampler, {}).get("inputs", {}).get("steps", 2))
        for step in range(1, steps + 1):
            await send("progress", {"value": step, "max": steps, "node": sampler})
            await asyncio.sleep(0.01)
        if self.mode in ("hang", "wedged"):
            self.running.add(prompt_id)
            return
        messages = [["execution_start", {"prompt_id": prompt_id}]]
        if self.mode == "exec_error":
            error = {"prompt_id": prompt_id, "node_id": sampler, "node_type": "KSampler", "executed": [],
                     "exception_message": "Expected all tensors to be on the same device", "exception_type": "RuntimeError",
                     "traceback": ["File \"/comfyui/comfy/samplers.py\", line 1"], "current_inputs": {}, "current_outputs": []}
            await send("execution_error", error)
            self.history[prompt_id] = {"outputs": {}, "status": {"status_str": "error", "completed": False,
                                                                  "messages": messages + [["execution_error", error]]}}
        else:
            latent = next((n["inputs"] for n in graph.values() if n["class_type"] in ("EmptySD3LatentImage", "ImageScale")), {})
            width, height = int(latent.get("width", 64)), int(latent.get("height", 64))
            images = []
            for index in range(int(latent.get("batch_size", 1))):
                name = f"flux_{len(self.files):05}_.png"
                self.files[name] = png_bytes(width, height)
                images.append({"filename": name, "subfolder": "", "type": "output"})
            save = next((nid for nid, n in graph.items() if n["class_type"] == "SaveImage"), "11")
            await send("executed", {"node": save, "display_node": save, "output": {"images": images}})
            if self.mode == "resend_executed":   # ComfyUI >= 0.30: a cached intermediate-output node's UI, sent again
                await send("executed", {"node": save, "display_node": save, "output": {"images": images}})
            await send("execution_success", {})
            self.history[prompt_id] = {"outputs": {save: {"images": images}},
                                       "status": {"status_str": "success", "completed": True,
                                                  "messages": messages + [["execution_success", {"prompt_id": prompt_id}]]}}
        await send("executing", {"node": None})

    async def _history(self, request):
        pid = request.match_info["pid"]
        self.history_reads += 1
        return web.json_response({pid: self.history[pid]} if pid in self.history else {})

    async def _interrupt(self, request):
        body = await request.json()
        self.interrupts.append(body)
        if self.mode != "wedged":
            self.running.discard(body.get("prompt_id"))
        return web.Response()

    async def _queue_get(self, request):
        return web.json_response({"queue_running": [[0, pid, {}, {}, []] for pid in sorted(self.running)],
                                  "queue_pending": []})

    async def _history_post(self, request):
        self.history_deletes.append((await request.json()).get("delete", []))
        return web.json_response({})

    async def _queue(self, request):
        self.queue_deletes.append(await request.json())
        return web.Response()

    async def _view(self, request):
        name = request.query["filename"]
        return web.Response(body=self.files[name], content_type="image/png") if name in self.files else web.Response(status=404)

    async def _upload(self, request):
        form = await request.post()
        if self.mode == "upload_400":
            return web.Response(status=400)
        part = form["image"]
        subfolder = form.get("subfolder", "")
        self.uploads[f"{subfolder}/{part.filename}" if subfolder else part.filename] = part.file.read()
        return web.json_response({"name": part.filename, "subfolder": form.get("subfolder", ""), "type": "input"})


# Inputs that take an upload, flagged as ComfyUI flags them (LoadImage's list is the input folder's files).
UPLOAD_INPUTS = {("LoadImage", "image"), ("LoadImageMask", "image")}
_WIDGET_TYPE = {str: "STRING", int: "INT", float: "FLOAT", bool: "BOOLEAN"}


def object_info_for(graph: dict) -> dict:
    """Just enough /object_info for `graph`: every class, every input (widgets typed by their value, links as
    "*"), the production model files as combos and LoadImage's upload flag."""
    info: dict = {}
    for node in graph.values():
        required = info.setdefault(node["class_type"], {"input": {"required": {}}, "python_module": "nodes"})["input"]["required"]
        for name, value in node["inputs"].items():
            options = MODEL_FILES.get((node["class_type"], name))
            if (node["class_type"], name) in UPLOAD_INPUTS:
                required[name] = [[], {"image_upload": True}]
            elif options:
                required[name] = [options, {}]
            else:
                required[name] = [_WIDGET_TYPE.get(type(value), "*"), {}]
    return info


def load_json(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
