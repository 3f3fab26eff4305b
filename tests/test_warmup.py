"""The warm-up before the first job (handler/__main__.warm_up), against a recording stand-in for the Worker."""

from handler.__main__ import warm_up
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
    import threading

    from handler.__main__ import start_warm_up

    gate, ended = threading.Event(), threading.Event()

    class SlowFailing(RecordingWorker):
        def handle(self, job):
            gate.wait(10)                      # the warm-up is still running...
            return {"error": "model missing"}

    thread = start_warm_up(SlowFailing(), Settings.from_env({"WARMUP_STEPS": "1"}), on_failure=ended.set)
    assert thread.is_alive() and not ended.is_set()     # ...and start_warm_up returned: jobs can be taken
    gate.set()
    thread.join(10)
    assert ended.is_set()
