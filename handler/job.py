"""One Runpod job from input to response, and the single boundary where failures become responses.

`Worker.handle(job)` is the function given to `runpod.serverless.start`. It validates `job["input"]`, builds the
ComfyUI graph (a shipped workflow with its named parameters filled, or the caller's own graph), checks it against
the workflow policy and moves its file names into the job's own folders (workflow_policy, job_files), uploads
the input images there, runs it through `ComfyClient`, encodes the outputs, deletes every file the job left in
ComfyUI's folders (success or failure) and returns the contract:
`{"status": "success", "prompt", "model", "seed", "image": {...}, "images": [...], "timings": {...}}`, where
`images[0]` is a reference to `image` (`{"same_as": "image", ...}`) so that no image's bytes are sent twice.
Any `WorkerError` becomes `{"error": <sentence>, "details": {...}}`; anything unexpected is logged with its
traceback and answered with a generic sentence, and the worker goes on serving. Only `ComfyUnavailableError`
(ComfyUI does not answer, died, or ignored an interrupt) adds `refresh_worker`: a caller's mistake never costs a
worker.

JOB_TIMEOUT_S is the whole job's budget: fetching input images, converting the workflow and queueing all spend
from the same deadline that then bounds ComfyUI's run.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import replace
from typing import Any, Callable

from . import (graph_rules, graph_sizes, input_files, inputs, loras, outputs, payload, storage, ui_params, ui_to_api,
               workflow, workflow_policy)
from .comfy_client import ComfyClient, RunResult
from .config import Settings
from .errors import ComfyUnavailableError, InputError, JobTimeoutError, WorkerError, WorkflowError, safe_text
from .job_files import JobFiles
from .lora_cache import LoraCache
from .readiness import PreloadGate
from .url_fetch import AddressPolicy

log = logging.getLogger(__name__)

MODEL_ID = "black-forest-labs/FLUX.1-dev"
ProgressReporter = Callable[[dict[str, Any], dict[str, Any]], None]
_PROGRESS_INTERVAL_S = 0.5


class JobLog(logging.LoggerAdapter):
    """Prefixes every line with the Runpod job id, so one job's story can be grepped out of the worker log."""

    def process(self, msg, kwargs):
        return f"[{self.extra['job_id']}] {msg}", kwargs


class Worker:
    def __init__(self, settings: Settings, client: ComfyClient, report_progress: ProgressReporter | None = None,
                 lora_policy: AddressPolicy = AddressPolicy()):
        self.settings = settings
        self.client = client
        self.report_progress = report_progress
        self.templates: dict[str, workflow.Template] = {}
        self.store = storage.bucket_store(settings.bucket)
        self.node_rules = workflow_policy.NodeRules(settings.workflow_allowed_nodes, settings.workflow_denied_nodes,
                                                    settings.workflow_extra_nodes, settings.loras.cache_prefix,
                                                    settings.workflow_allowed_pack_nodes, settings.node_packs)
        # One job at a time, the warm-up's included: jobs share ComfyUI's folders (JobFiles counts what appeared
        # while a job ran as that job's) and this client's HTTP session.
        self._one_job = threading.Lock()
        # Nothing is queued while ComfyUI's start-up preload loads models (readiness.PreloadGate).
        self.preload_gate = PreloadGate(client, settings.ready_timeout_s, enabled=settings.preload_workflow is not None)
        # Jobs stopped at their deadline: ComfyUI may still write into their folders after they were cleaned.
        self._interrupted: list[JobFiles] = []
        lora = settings.loras
        self.lora_cache = (LoraCache(lora.cache_dir, lora.cache_max_bytes, lora.fetch, https_only=not lora.allow_http,
                                     policy=lora_policy) if lora.cache_dir is not None else None)

    # ---- start-up ---------------------------------------------------------------------------------------
    def prepare(self) -> list[str]:
        """Load every shipped workflow and check it against the running ComfyUI; return the problems found."""
        problems = []
        object_info = self.client.object_info(refresh=True)
        for name in workflow.available(self.settings.workflows_dir):
            try:
                template = workflow.load_template(self.settings.workflows_dir, name)
            except WorkerError as err:
                problems.append(f"{name}: {err.message}")
                continue
            self.templates[name] = template
            problems += [f"{name}: {p}" for p in workflow.check_graph(template.graph, object_info, template.bound_inputs())]
        for pack in self.settings.node_packs.packs:
            absent = [c for c in pack.classes if c not in object_info]
            if absent:
                # Not fatal (the rest of the worker serves), but workflows needing the pack will be refused.
                log.error("node pack '%s' (%s) loaded at build but %d of its classes are not in this ComfyUI "
                          "(e.g. %s): see ComfyUI's log for its import error", pack.name, pack.line, len(absent),
                          absent[0])
        if self.settings.default_workflow not in self.templates:
            problems.append(f"DEFAULT_WORKFLOW '{self.settings.default_workflow}' is not among the loaded workflows")
        if self.store is not None and (reason := self.store.check()):
            problems.append(f"bucket: {reason}")
        for name, folder in (("COMFYUI_INPUT_DIR", self.settings.comfyui_input_dir),
                             ("COMFYUI_OUTPUT_DIR", self.settings.comfyui_output_dir),
                             ("COMFYUI_TEMP_DIR", self.settings.comfyui_temp_dir)):
            if folder is None or not folder.is_dir():
                # Not fatal (ComfyUI may run elsewhere), but jobs' files there will not be deleted.
                log.warning("ComfyUI's folder %s (%s) is not on this machine: jobs' files there will not be deleted",
                            folder or "unknown", name)
        return problems

    # ---- one job ----------------------------------------------------------------------------------------
    def handle(self, job: dict[str, Any]) -> dict[str, Any]:
        job_id = safe_text(job.get("id", "-"), 80) if isinstance(job, dict) else "-"
        jlog = JobLog(log, {"job_id": job_id})
        try:
            if not self._one_job.acquire(timeout=self.settings.job_timeout_s):
                raise _timeout("while another job (or the warm-up) still held the worker")
            try:
                return self._handle(job if isinstance(job, dict) else {}, job_id, jlog)
            finally:
                self._one_job.release()
        except ComfyUnavailableError as err:
            jlog.error("failed, asking Runpod to replace this worker (refresh_worker): %s", err.message)
            # ComfyUI is gone or wedged: ask Runpod to replace this worker after answering.
            return {**err.to_response(), "refresh_worker": True}
        except WorkerError as err:
            jlog.warning("failed: %s", err.message)
            return err.to_response()
        except Exception:
            jlog.exception("unexpected failure")
            return {
                "error": "The worker hit an internal error and did not finish the job; it is ready for the next one.",
                "details": {"type": "internal_error"},
            }

    def _handle(self, job: dict[str, Any], job_id: str, jlog: JobLog) -> dict[str, Any]:
        started = time.perf_counter()
        deadline = time.monotonic() + self.settings.job_timeout_s
        request = inputs.parse(job.get("input"))
        if request.action == "info":
            from .info import describe

            return describe(self.client, self.templates, self.settings.loras.cache_prefix, self.settings.node_packs)

        files = JobFiles(job_id, input_dir=self.settings.comfyui_input_dir,
                         output_dir=self.settings.comfyui_output_dir, temp_dir=self.settings.comfyui_temp_dir)
        try:
            return self._run(request, job, job_id, jlog, files, started, deadline)
        except JobTimeoutError:
            self._interrupted.append(files)
            raise
        finally:
            self._clean(files, jlog)

    def _clean(self, files: JobFiles, jlog: JobLog) -> None:
        """Delete the job's files from ComfyUI's folders (and what interrupted jobs wrote after their cleanup)."""
        try:
            removed = files.clean()
            for earlier in list(self._interrupted):
                if earlier is not files:
                    removed += earlier.clean_folders()
                    self._interrupted.remove(earlier)
        except Exception:  # housekeeping never turns a job's answer into a failure
            jlog.exception("could not delete the job's files")
            return
        if removed:
            jlog.info("deleted %d file(s) the job left in ComfyUI's folders", removed)

    def _run(self, request: inputs.Request, job: dict[str, Any], job_id: str, jlog: JobLog, files: JobFiles,
             started: float, deadline: float) -> dict[str, Any]:
        limits = self.settings.input_limits
        # Cheap checks of `images` first (names, sizes), so a bad entry fails before the graph is looked at.
        specs = input_files.parse_images(request.images, max_bytes=limits.max_bytes)
        graph, extra_data = self._build_graph(request, job_id, jlog)
        custom = request.workflow is not None
        object_info = self.client.object_info()
        # The graph's LoRA URLs are found first but fetched last: every rule runs before anything is downloaded.
        in_graph = loras.url_inputs(graph, object_info) if custom else ()
        names = workflow_policy.JobNames(files.folder, {spec.name: f"{files.folder}/{spec.name}" for spec in specs})
        graph = workflow_policy.enforce(graph, object_info, names, rules=self.node_rules if custom else None,
                                        options=self.client.input_options,
                                        pending=frozenset((s.node_id, loras.LORA_INPUT) for s in in_graph))
        images = self._load_images(specs, deadline)
        if custom:
            graph_sizes.check(graph, object_info, self.settings.workflow_limits, {
                names.uploads[image.name]: graph_sizes.Upload(image.width, image.height, image.frames)
                for image in images})
        graph = self._apply_loras(request, graph, in_graph, deadline, jlog)
        self._preflight(request, graph, extra_data)
        if images:
            stored = input_files.upload_images(self.client, images, files.folder)
            jlog.info("uploaded %d input image(s) to %s/", len(stored), files.folder)
        self.preload_gate.wait()
        jlog.info("queueing %d-node graph (%s)", len(graph), request.workflow_name or ("custom" if request.workflow else self.settings.default_workflow))
        result = self.client.run(
            graph,
            timeout_s=_remaining(deadline, "before ComfyUI was given the workflow"),
            on_progress=self._progress_reporter(job, graph),
            extra_data=extra_data,
            interrupt_grace_s=self.settings.interrupt_grace_s,
        )
        jlog.info("ComfyUI finished in %.2f s (queued %.2f s)", result.execution_s, result.queued_s)
        fetch_started = time.perf_counter()
        collected = outputs.collect_outputs(
            self.client, result, list(graph), job_id=_safe_id(job_id), output_format=request.output_format,
            quality=request.quality, include_previews=request.include_previews, store=self.store,
            output_dir=self.settings.comfyui_output_dir, png_compress_level=self.settings.png_compress_level,
            max_file_bytes=outputs.read_limit(self.settings.max_response_bytes, bucket=self.store is not None),
            deadline=deadline,
        )
        timings = {
            "total_s": round(time.perf_counter() - started, 3),
            "comfyui_connect_s": result.connect_s,
            "comfyui_submit_s": result.submit_s,
            "comfyui_queue_s": result.queued_s,
            "comfyui_execution_s": result.execution_s,
            "comfyui_history_s": result.history_s,
            "outputs_s": round(time.perf_counter() - fetch_started, 3),
            "nodes_s": {nid: {"class_type": graph.get(nid, {}).get("class_type"), "seconds": s} for nid, s in result.node_seconds.items()},
        }
        if not collected.outputs:
            raise WorkflowError("The workflow finished but produced no output; add a SaveImage (or other save) node.", {"prompt_id": result.prompt_id})
        response = {
            "status": "success",
            "prompt": request.prompt,
            "model": MODEL_ID,
            "seed": request.seed,
            # `image` (the original contract) carries the first image's bytes, `images[0]` refers to it.
            **outputs.core_images(collected.images, legacy_image=request.legacy_image),
            "outputs": collected.outputs,
            "timings": timings,
        }
        size = payload.check_inline(response, self.settings.max_response_bytes,
                                    bucket_configured=self.store is not None, uploaded=self.store is not None)
        jlog.info("done: %d output(s), %d bytes, in %.2f s", len(collected.outputs), size, timings["total_s"])
        return response

    def _load_images(self, specs: list[input_files.InputImageSpec], deadline: float) -> list[input_files.InputImage]:
        """Fetch and check the input images within what is left of the job's time (each URL also has its own
        INPUT_URL_DEADLINE_S); running out of the job's time is a `timeout`, not the caller's URL's fault. They are
        uploaded to ComfyUI only once every rule passed."""
        if not specs:
            return []
        remaining = _remaining(deadline, "before its input images were fetched")
        limits = self.settings.input_limits
        bound_by_job = remaining < limits.deadline_s
        try:
            return input_files.load_images(specs, limits=replace(limits, deadline_s=min(limits.deadline_s, remaining)))
        except InputError:
            if bound_by_job and time.monotonic() >= deadline:
                raise _timeout("while its input images were fetched") from None
            raise

    def _preflight(self, request: inputs.Request, graph: dict[str, Any], extra_data: dict[str, Any]) -> None:
        """Refuse before the GPU runs when the response certainly cannot fit Runpod's payload limit."""
        width, height = request.parameters.get("width"), request.parameters.get("height")
        if width is None or height is None or request.workflow is not None:
            return
        metadata = payload.png_metadata_bytes(graph, extra_data.get("extra_pnginfo")) if request.output_format == "png" else 0
        # Each image's bytes are sent once (`image` carries the first, `images[0]` refers to it: core_images).
        payload.preflight(files=request.parameters.get("num_images", 1), width=width, height=height,
                          output_format=request.output_format, limit=self.settings.max_response_bytes,
                          bucket_configured=self.store is not None, png_metadata_bytes=metadata)

    def _build_graph(self, request: inputs.Request, job_id: str,
                     jlog: logging.LoggerAdapter | logging.Logger = log) -> tuple[dict[str, Any], dict[str, Any]]:
        """The API graph to queue, and the extra_data that goes with it."""
        if request.workflow is not None:
            limits = self.settings.workflow_limits
            graph_rules.check_workflow_json(request.workflow, limits)
            extra_data: dict[str, Any] = {}
            object_info = self.client.object_info()
            is_ui = ui_to_api.is_ui_format(request.workflow)
            graph = (ui_to_api.convert(request.workflow, object_info, limits, packs=self.settings.node_packs) if is_ui
                     else graph_rules.check_api_graph(graph_rules.drop_unreachable(request.workflow, object_info),
                                                      limits))
            template = self.templates.get(self.settings.default_workflow)
            parameters = template.parameters if template else {}
            filled = workflow.fill(graph, parameters, request.parameters) if request.parameters else graph
            graph_rules.check_api_graph(filled, limits)
            if is_ui and not request.loras:
                # Saved PNGs embed the GUI workflow, as when queued from the GUI, with the values that ran written
                # in (or none where that cannot be exact: ui_params). LoRA nodes are not in the caller's workflow.
                ran = ui_params.workflow_that_ran(request.workflow, parameters, request.parameters, filled,
                                                  object_info, limits, jlog)
                extra_data = {"extra_pnginfo": {"workflow": ran}} if ran is not None else {}
            # An API graph's stray nodes were dropped before its checks; a GUI graph's only now, after ui_params
            # compared what ran with the conversion of the whole workflow.
            runs = graph_rules.drop_unreachable(filled, object_info) if is_ui else filled
            return graph_rules.mark_output_nodes(runs, object_info, _safe_id(job_id)), extra_data
        template = self._template(request.workflow_name or self.settings.default_workflow)
        for field in template.required:
            if field not in request.provided:
                raise InputError(field, None, f"is required by workflow '{template.name}'", show_value=False)
        # Defaults fill only what this workflow has; a field the caller gave must fit it (fill refuses otherwise).
        values = {k: v for k, v in request.parameters.items() if k in template.parameters or k in request.provided}
        if "input_image" in values and values["input_image"] not in {i.get("name") for i in request.images if isinstance(i, dict)}:
            raise InputError("input_image", values["input_image"], "must be the name of one of the entries in 'images'")
        return workflow.fill(template.graph, template.parameters, values), {}

    def _apply_loras(self, request: inputs.Request, graph: dict[str, Any], in_graph: tuple[loras.LoraSpec, ...],
                     deadline: float, jlog: JobLog) -> dict[str, Any]:
        """Resolve the request's LoRAs and the graph's LoRA URLs (`in_graph`) to files ComfyUI lists (downloading
        URLs into the cache, at most LORA_JOB_MAX_URLS and LORA_JOB_MAX_BYTES per job, checking every file's keys)
        and splice the request's loader nodes into the graph (loras.py), within the job's time."""
        if not request.loras and not in_graph:
            return graph
        settings = self.settings.loras

        def left() -> float:
            return _remaining(deadline, "before its LoRAs were fetched")

        bound_by_job = left() < settings.fetch.deadline_s
        try:
            resolved = loras.resolve(
                request.loras + in_graph, listed=lambda: self.client.input_options(loras.LOADER_CLASS, "lora_name"),
                search_dirs=settings.dirs, cache=self.lora_cache, cache_prefix=settings.cache_prefix, deadline_s=left,
                max_urls=settings.job_max_urls, max_bytes=settings.job_max_bytes, logger=jlog)
        except InputError:
            if bound_by_job and time.monotonic() >= deadline:
                raise _timeout("while its LoRAs were fetched") from None
            raise
        if in_graph:
            graph = loras.set_names(graph, in_graph, resolved[len(request.loras):])
            resolved = resolved[: len(request.loras)]
            jlog.info("%d LoRA loader node(s) of the workflow named a URL: now the cached file", len(in_graph))
        if not resolved:
            return graph
        jlog.info("applying %d LoRA(s) to the model: %s", len(resolved),
                  ", ".join(f"{safe_text(name, 120)} x{strength:g}" for name, strength in resolved))
        return loras.insert(graph, resolved, self.client.object_info())

    def _template(self, name: str) -> workflow.Template:
        template = self.templates.get(name)
        if template is None:
            raise WorkflowError(
                f"Workflow '{name}' does not exist; shipped workflows: {', '.join(sorted(self.templates)) or 'none'}.",
                {"workflow_name": name, "available": sorted(self.templates)},
            )
        return template

    def _progress_reporter(self, job: dict[str, Any], graph: dict[str, Any]) -> Callable[[str, int, int], None] | None:
        report = self.report_progress
        if report is None:
            return None
        last_sent = [0.0]

        def on_progress(node_id: str, value: int, maximum: int) -> None:
            now = time.monotonic()
            if value < maximum and now - last_sent[0] < _PROGRESS_INTERVAL_S:
                return
            last_sent[0] = now
            node = graph.get(node_id, {})
            title = workflow.node_title(node) or node.get("class_type", node_id)
            unit = "step" if "Sampler" in str(node.get("class_type")) else "part"
            report(job, {
                "node_id": node_id,
                "class_type": node.get("class_type"),
                "value": value,
                "max": maximum,
                "message": f"{title}: {unit} {value} of {maximum}",
            })

        return on_progress


def _remaining(deadline: float, where: str) -> float:
    """Seconds left of the job's budget; none left is a `timeout` naming where the time ran out."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timeout(where)
    return left


def _timeout(where: str) -> JobTimeoutError:
    return JobTimeoutError(f"The job ran past its time limit {where}; raise JOB_TIMEOUT_S or send smaller or faster "
                           "input images.", {"phase": where})


def _safe_id(job_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", job_id)[:64] or "job"
