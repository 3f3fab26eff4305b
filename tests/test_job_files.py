"""A job's files in ComfyUI's folders: its own subfolders, and nothing of it left after it (handler/job_files.py).
What ComfyUI really writes is covered in tests/integration/test_hostile_callers_live.py; here, the bookkeeping."""

from __future__ import annotations

from pathlib import Path

from handler.job_files import JobFiles, folder_name


def dirs(tmp_path: Path) -> dict[str, Path]:
    found = {name: tmp_path / name for name in ("input", "output", "temp")}
    for d in found.values():
        d.mkdir()
    return found


def job(tmp_path: Path, job_id: str = "sync-1") -> tuple[JobFiles, dict[str, Path]]:
    d = dirs(tmp_path) if not (tmp_path / "input").exists() else {n: tmp_path / n for n in ("input", "output", "temp")}
    return JobFiles(job_id, input_dir=d["input"], output_dir=d["output"], temp_dir=d["temp"]), d


def write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_names_are_safe_and_never_repeat_for_the_same_job_id():
    a, b = folder_name("sync-1/../x"), folder_name("sync-1/../x")
    assert a != b and "/" not in a and ".." not in a and a.startswith("sync-1____x-")
    assert folder_name("").startswith("job-")


def test_everything_the_job_wrote_goes_and_everything_else_stays(tmp_path):
    d = dirs(tmp_path)
    keep = [write(d["input"] / "example.png"), write(d["output"] / "checkpoints" / "operator.safetensors"),
            write(d["temp"] / "older.png")]
    (d["output"] / "empty-before").mkdir()
    files, _ = job(tmp_path)
    written = [write(d["input"] / files.folder / "face.png"), write(d["output"] / files.folder / "flux_00001_.png"),
               write(d["temp"] / "ComfyUI_temp_abcd_00001_.png"),  # a preview
               write(d["output"] / "checkpoints" / "caller.safetensors"),  # a node writing outside its prefix
               write(d["output"] / "empty-before" / "x.bin"), write(d["output"] / "new" / "deep" / "y.bin")]
    assert files.clean() == len(written)
    assert not any(p.exists() for p in written) and all(p.exists() for p in keep)
    assert not (d["input"] / files.folder).exists() and not (d["output"] / files.folder).exists()
    assert not (d["output"] / "new").exists()  # folders the job created go too
    assert (d["output"] / "empty-before").is_dir() and (d["output"] / "checkpoints").is_dir()


def test_a_second_clean_of_an_interrupted_job_removes_what_came_later(tmp_path):
    files, d = job(tmp_path)
    files.clean()
    late = write(d["output"] / files.folder / "late_00001_.png")  # the interrupted prompt went on writing
    assert files.clean_folders() == 1 and not late.exists()


def test_missing_or_unconfigured_folders_are_skipped(tmp_path):
    files = JobFiles("j", input_dir=None, output_dir=tmp_path / "absent", temp_dir=None)
    assert files.clean() == 0


def test_a_symlink_is_deleted_not_followed(tmp_path):
    outside = write(tmp_path / "outside" / "precious.png")
    files, d = job(tmp_path)
    (d["output"] / files.folder).mkdir()
    (d["output"] / files.folder / "link").symlink_to(outside.parent)
    (d["temp"] / "link.png").symlink_to(outside)
    files.clean()
    assert outside.exists() and not (d["temp"] / "link.png").exists() and not (d["output"] / files.folder).exists()
