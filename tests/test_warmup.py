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


def test_each_size_once_then_the_first_size_again_with_another_prompt():
    worker = RecordingWorker()
    assert warm_up(worker, Settings.from_env({"WARMUP_STEPS": "2", "WARMUP_SIZES": "832x1536,1024x1024"}))
    inputs = [job["input"] for job in worker.jobs]
    assert [(i["width"], i["height"]) for i in inputs] == [(832, 1536), (1024, 1024), (832, 1536)]
    assert all(i["num_inference_steps"] == 2 for i in inputs)
    # The last run must be a new prompt, or ComfyUI would serve it from its cache without loading or sampling.
    assert inputs[-1]["prompt"] != inputs[0]["prompt"]
    assert len({job["id"] for job in worker.jobs}) == 3


def test_a_failed_warm_up_stops_warming_up_and_does_not_raise():
    worker = RecordingWorker(fail_at=0)
    assert not warm_up(worker, Settings.from_env({"WARMUP_STEPS": "1", "WARMUP_SIZES": "832x1536,1024x1024"}))
    assert len(worker.jobs) == 1
