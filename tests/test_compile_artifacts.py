"""Compiled-kernel artifacts on disk (comfy_nodes/flux_fast/artifacts.py): a worker loads only whole, intact files
of its own build, and a bad file costs a compile, never the worker. Pure Python: no torch needed."""

from comfy_nodes.flux_fast.artifacts import MAGIC, ArtifactStore


def test_round_trip(tmp_path):
    store = ArtifactStore(tmp_path / "volume" / "artifacts", "h200-key")
    said = store.write(b"\x00kernels" * 1000)
    assert "saved" in said
    payload, why = ArtifactStore(tmp_path / "volume" / "artifacts", "h200-key").read()
    assert payload == b"\x00kernels" * 1000 and "MiB" in why
    assert [p.name for p in store.folder.iterdir()] == ["h200-key.bin"]     # no temporary file left behind


def test_another_build_finds_nothing(tmp_path):
    ArtifactStore(tmp_path, "h200-key").write(b"kernels")
    payload, why = ArtifactStore(tmp_path, "h100-key").read()
    assert payload is None and "no artifacts" in why


def test_truncated_or_corrupt_file_is_set_aside_and_ignored(tmp_path):
    store = ArtifactStore(tmp_path, "k")
    store.write(b"A" * 4096)
    store.path.write_bytes(store.path.read_bytes()[:-10])           # truncated copy (a crashed writer elsewhere)
    payload, why = store.read()
    assert payload is None and "checksum" in why
    assert not store.path.exists() and (tmp_path / "k.rejected").exists()
    assert store.read()[0] is None                                    # read again: gone, not retried
    store.write(b"B" * 10)                                            # the next compile saves a good one
    assert store.read()[0] == b"B" * 10


def test_a_file_that_is_not_ours_is_rejected(tmp_path):
    store = ArtifactStore(tmp_path, "k")
    store.path.write_bytes(b"PK\x03\x04 something else entirely" * 10)
    assert store.read()[0] is None
    store.path.write_bytes(MAGIC + b"0" * 64 + b"\n" + b"payload")
    assert "checksum" in store.read()[1]


def test_an_unwritable_folder_is_reported_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    said = ArtifactStore(blocker / "sub", "k").write(b"data")
    assert said.startswith("artifacts not saved")
