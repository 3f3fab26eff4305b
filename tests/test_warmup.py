"""The warm-up (handler/warmup.py), against a recording stand-in for the Worker and its ComfyUI client."""

import threading

from handler.warmup import WarmUp, warm_up
from handler.config import Settings


class RecordingWorker:
    def __init__(self, fail_at: int | None = None):
        self.jobs, self.fail_at = [], fail_at

    def handle(self, job):
        self.jobs.append(job)
        if self.fail_at is not None and len(self.jobs) - 1 == self.fail_at:
            return {"error": {"type": "comfy_validation", "message": "model missing"}}
        return {"status": "success", "timings": {"total_s": 1.0}}


def test_each_size_once_with_its_own_prompt():
    worker = RecordingWorker()
    assert warm_up(worker, Settings.from_env({"WARMUP_STEPS": "2", "WARMUP_SIZES": "832x1536,1024x1024"}))
    inputs = [job["input"] for job in worker.jobs]
    assert [(i["width"], i["height"]) for i in inputs] == [(832, 1536), (1024, 1024)]
    assert all(i["num_inference_steps"] == 2 for i in inputs)
    # Distinct prompts, or ComfyUI would serve the second from its cache without loading or sampling.
    assert inputs[0]["prompt"] != inputs[1]["prompt"]
    assert len({job["id"] for job in worker.jobs}) == 2


def test_a_failed_warm_up_stops_warming_up_and_does_not_raise():
    worker = RecordingWorker(fail_at=0)
    assert not warm_up(worker, Settings.from_env({"WARMUP_STEPS": "1", "WARMUP_SIZES": "832x1536,1024x1024"}))
    assert len(worker.jobs) == 1


def test_the_warm_up_runs_beside_the_job_loop_and_a_failed_one_ends_the_worker():
    gate, ended = threading.Event(), threading.Event()

    class SlowFailing(RecordingWorker):
        def handle(self, job):
            gate.wait(10)                      # the warm-up is still running...
            return {"error": "model missing"}

    thread = WarmUp(SlowFailing(), Settings.from_env({"WARMUP_STEPS": "1"}), on_failure=ended.set).start()
    assert thread.is_alive() and not ended.is_set()     # ...and start returned: jobs can be taken
    gate.set()
    thread.join(10)
    assert ended.is_set()


class QueueClient:
    """ComfyUI's queue as the warm-up sees it: what is running or pending, and what was cancelled."""

    def __init__(self, queued):
        self.queued, self.cancelled = list(queued), []

    def queued_prompt_ids(self):
        return list(self.queued)

    def cancel(self, prompt_id):
        self.cancelled.append(prompt_id)


class InterruptibleWorker(RecordingWorker):
    """handle() blocks like a running ComfyUI prompt until cancelled, then answers as an interrupted job does."""

    def __init__(self, queued=("warmup-prompt",)):
        super().__init__()
        self.client = QueueClient(queued)
        self.running, self.interrupted = threading.Event(), threading.Event()
        original = self.client.cancel

        def cancel(prompt_id):
            original(prompt_id)
            self.interrupted.set()

        self.client.cancel = cancel

    def handle(self, job):
        self.jobs.append(job)
        if job["id"].startswith("warmup"):
            self.running.set()
            self.interrupted.wait(10)
            return {"error": {"type": "execution_interrupted", "message": "interrupted"}}
        return {"status": "success", "timings": {"total_s": 1.0}}


def test_the_first_job_cancels_the_running_warm_up_and_that_is_not_a_failure():
    worker, ended = InterruptibleWorker(), threading.Event()
    warm = WarmUp(worker, Settings.from_env({"WARMUP_STEPS": "1", "WARMUP_SIZES": "832x1536,1024x1024"}),
                  on_failure=ended.set)
    handle = warm.before_each_job(worker.handle)
    warm.start()
    assert worker.running.wait(10)
    assert handle({"id": "job-1", "input": {"prompt": "x"}})["status"] == "success"
    warm.thread.join(10)
    assert worker.client.cancelled == ["warmup-prompt"]
    assert not ended.is_set()                                          # the worker keeps serving
    assert [j["id"] for j in worker.jobs] == ["warmup-0-832x1536", "job-1"]   # and the second size never ran


def test_jobs_after_the_warm_up_cancel_nothing():
    worker = InterruptibleWorker(queued=("someone-elses",))
    worker.handle = lambda job: (worker.jobs.append(job), {"status": "success", "timings": {"total_s": 1.0}})[1]
    warm = WarmUp(worker, Settings.from_env({"WARMUP_STEPS": "1"}), on_failure=lambda: None)
    handle = warm.before_each_job(worker.handle)
    warm.start().join(10)                                               # the warm-up finished on its own
    handle({"id": "job-1", "input": {"prompt": "x"}})
    handle({"id": "job-2", "input": {"prompt": "y"}})
    assert worker.client.cancelled == []


def test_a_comfyui_that_cannot_be_asked_still_lets_the_job_run():
    from handler.errors import ComfyUnavailableError

    worker = InterruptibleWorker()

    def unreachable():
        raise ComfyUnavailableError("ComfyUI did not answer")

    worker.client.queued_prompt_ids = unreachable
    warm = WarmUp(worker, Settings.from_env({"WARMUP_STEPS": "1"}), on_failure=lambda: None)
    handle = warm.before_each_job(worker.handle)
    warm.start()
    assert worker.running.wait(10)
    assert handle({"id": "job-1", "input": {"prompt": "x"}})["status"] == "success"   # the job decides, not the warm-up
    worker.interrupted.set()
    warm.thread.join(10)


class _Gate:
    """The worker's preload gate (readiness.PreloadGate): open once `opened` is set."""

    def __init__(self):
        self.opened = threading.Event()

    def wait(self):
        self.opened.wait(10)


def test_a_job_arriving_while_the_preload_loads_means_the_warm_up_never_queues():
    worker = RecordingWorker()
    worker.preload_gate = _Gate()
    warm = WarmUp(worker, Settings.from_env({"WARMUP_STEPS": "1"}), on_failure=lambda: None,
                  client=InterruptibleWorker().client)
    handle = warm.before_each_job(worker.handle)
    warm.start()
    warm.give_way()                          # the first job arrives; the warm-up still waits for the preload
    worker.preload_gate.opened.set()
    warm.thread.join(10)
    handle({"id": "job-1", "input": {"prompt": "x"}})
    assert [j["id"] for j in worker.jobs] == ["job-1"]      # the first job ran without the warm-up before it
