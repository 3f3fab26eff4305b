"""Compiled FLUX blocks on disk (comfy_nodes/flux_fast/artifacts.py). A package is code the worker executes, so what
a user (the deployer) would notice: a worker loads only what this deployment built (baked into the image, or
signed with the endpoint's secret on the volume), a damaged or foreign file costs a build, never the worker, and
two workers publishing at once leave something whole. Pure Python: no torch needed."""

import json

from comfy_nodes.flux_fast.artifacts import ArtifactFolder, Package, folders, sign

KEY = "nvidia-h100-80gb-hbm3-torch2.11.0-cu130-bf16-0123456789abcdef"
SECRET = b"endpoint-secret"


def _packages(tag: bytes = b"") -> dict[str, Package]:
    inputs = [{"ndim": 3, "dtype": "bfloat16", "shape": [2, 96, 3072], "dynamic": [0, 1]}]
    return {"double_blocks": Package("double_blocks", b"\x7fELF double" + tag * 100, inputs, ("img_mod.lin.weight",)),
            "single_blocks": Package("single_blocks", b"\x7fELF single" + tag * 100, inputs, ("linear1.weight",))}


def test_signed_round_trip_through_the_shared_folder(tmp_path):
    said = ArtifactFolder(tmp_path, trusted=False, secret=SECRET).write(KEY, _packages())
    assert said.startswith("artifacts published")
    packages, why = ArtifactFolder(tmp_path, trusted=False, secret=SECRET).read(KEY)
    assert packages is not None, why
    assert packages["double_blocks"].data == _packages()["double_blocks"].data
    assert packages["single_blocks"].inputs[0]["dynamic"] == [0, 1]
    assert packages["double_blocks"].weights == ("img_mod.lin.weight",)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temporary file left behind


def test_without_the_secret_the_shared_folder_is_neither_read_nor_written(tmp_path):
    ArtifactFolder(tmp_path, trusted=False, secret=SECRET).write(KEY, _packages())
    before = sorted(p.name for p in tmp_path.iterdir())
    no_secret = ArtifactFolder(tmp_path, trusted=False, secret=None)
    packages, why = no_secret.read(KEY)
    assert packages is None and "FLUX_FAST_ARTIFACTS_SECRET" in why
    assert "FLUX_FAST_ARTIFACTS_SECRET" in no_secret.write(KEY, _packages(b"x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_package_swapped_by_someone_with_volume_access_is_refused(tmp_path):
    ArtifactFolder(tmp_path, trusted=False, secret=SECRET).write(KEY, _packages())
    manifest_path = tmp_path / f"{KEY}.json"
    manifest = json.loads(manifest_path.read_text())
    # the attacker writes their own library and fixes up the checksum, but cannot sign without the secret
    evil = tmp_path / "evil.pt2"
    evil.write_bytes(b"\x7fELF evil")
    import hashlib

    manifest["lists"]["double_blocks"].update(file="evil.pt2", sha256=hashlib.sha256(b"\x7fELF evil").hexdigest())
    manifest["hmac"] = sign(manifest, b"a guess")
    manifest_path.write_text(json.dumps(manifest))
    packages, why = ArtifactFolder(tmp_path, trusted=False, secret=SECRET).read(KEY)
    assert packages is None and "signature" in why
    assert not manifest_path.exists() and (tmp_path / f"{KEY}.json.rejected").exists()   # set aside, not retried


def test_a_damaged_package_is_set_aside_and_the_next_build_publishes_a_good_one(tmp_path):
    folder = ArtifactFolder(tmp_path, trusted=False, secret=SECRET)
    folder.write(KEY, _packages())
    manifest = json.loads((tmp_path / f"{KEY}.json").read_text())
    package_file = tmp_path / manifest["lists"]["single_blocks"]["file"]
    package_file.write_bytes(package_file.read_bytes()[:-5])              # truncated copy
    packages, why = folder.read(KEY)
    assert packages is None and "checksum" in why
    assert folder.read(KEY)[0] is None and "no artifacts" in folder.read(KEY)[1]
    folder.write(KEY, _packages(b"rebuilt"))
    assert folder.read(KEY)[0]["single_blocks"].data.endswith(b"rebuilt")


def test_a_manifest_cannot_point_outside_its_folder(tmp_path):
    outside = tmp_path / "outside.pt2"
    outside.write_bytes(b"\x7fELF outside")
    inner = tmp_path / "baked"
    folder = ArtifactFolder(inner, trusted=True)
    folder.write(KEY, _packages())
    manifest = json.loads((inner / f"{KEY}.json").read_text())
    manifest["lists"]["double_blocks"]["file"] = "../outside.pt2"
    (inner / f"{KEY}.json").write_text(json.dumps(manifest))
    packages, why = folder.read(KEY)
    assert packages is None and "unreadable" in why                      # read as a name inside the folder only


def test_baked_folder_is_trusted_without_a_signature_but_still_checksummed(tmp_path):
    ArtifactFolder(tmp_path, trusted=True).write(KEY, _packages())
    assert "hmac" not in json.loads((tmp_path / f"{KEY}.json").read_text())
    packages, why = ArtifactFolder(tmp_path, trusted=True).read(KEY)
    assert packages is not None and "baked" in why
    assert ArtifactFolder(tmp_path, trusted=True).read("another-gpu-key")[0] is None


def test_two_workers_publishing_at_once_leave_one_whole_manifest(tmp_path):
    a, b = ArtifactFolder(tmp_path, trusted=False, secret=SECRET), ArtifactFolder(tmp_path, trusted=False, secret=SECRET)
    a.write(KEY, _packages(b"a"))
    b.write(KEY, _packages(b"b"))                   # the later manifest wins; its packages never overwrote a's
    packages, why = a.read(KEY)
    assert packages is not None and packages["double_blocks"].data.endswith(b"b"), why
    assert len(list(tmp_path.glob("*.pt2"))) == 4


def test_an_unwritable_folder_is_reported_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    said = ArtifactFolder(blocker / "sub", trusted=False, secret=SECRET).write(KEY, _packages())
    assert said.startswith("artifacts not published")


def test_folders_from_the_environment():
    assert folders({}) == []
    found = folders({"FLUX_FAST_BAKED_ARTIFACTS_DIR": "/worker/compile-artifacts",
                     "FLUX_FAST_ARTIFACTS_DIR": "/runpod-volume/.cache/flux-fast", "FLUX_FAST_ARTIFACTS_SECRET": "s"})
    assert [(f.label, f.trusted, f.usable) for f in found] == [("baked", True, True), ("shared", False, True)]
    unsigned = folders({"FLUX_FAST_ARTIFACTS_DIR": "/runpod-volume/.cache/flux-fast"})
    assert [(f.label, f.usable) for f in unsigned] == [("shared", False)]


def test_bake_copies_only_what_it_can_verify_and_signs_for_its_destination(tmp_path):
    from tools.bake_compiled_blocks import copy_artifacts

    run_secret = b"this bake run's own"
    source = ArtifactFolder(tmp_path / "run", trusted=False, secret=run_secret)
    source.write(KEY, _packages())
    (tmp_path / "run" / "planted.json").write_text(json.dumps({"format": 3, "key": "planted", "lists": {}}))
    image = ArtifactFolder(tmp_path / "image", trusted=True)
    said = copy_artifacts(source, image)
    assert any("published" in line for line in said) and any("planted: skipped" in line for line in said)
    assert image.read(KEY)[0]["double_blocks"].data == _packages()["double_blocks"].data
    volume = ArtifactFolder(tmp_path / "volume", trusted=False, secret=SECRET)
    copy_artifacts(ArtifactFolder(tmp_path / "run", trusted=False, secret=run_secret), volume)
    assert volume.read(KEY)[0] is not None                       # signed with the endpoint's secret
    assert ArtifactFolder(tmp_path / "volume", trusted=False, secret=b"other").read(KEY)[0] is None


def test_a_failed_build_stops_the_next_workers_from_building_it_again_for_a_while(tmp_path):
    from comfy_nodes.flux_fast.artifacts import FAILED_BUILD_RETRY_S

    first = ArtifactFolder(tmp_path, trusted=False, secret=SECRET)
    first.record_failure(KEY, "the build failed after 41.0 s: Segmentation fault in .wrapper.so", now=1000.0)
    later = ArtifactFolder(tmp_path, trusted=False, secret=SECRET)
    said = later.recent_failure(KEY, now=1000.0 + 600)
    assert said and "10 min ago" in said and "Segmentation fault" in said and f"{KEY}.failed.json" in said
    assert later.recent_failure("another-key", now=1600.0) is None                    # another GPU or torch
    assert later.recent_failure(KEY, now=1000.0 + FAILED_BUILD_RETRY_S) is None       # tried again after a while
    (tmp_path / f"{KEY}.failed.json").unlink()
    assert later.recent_failure(KEY, now=1600.0) is None                              # or when the note is deleted


def test_a_failure_note_only_counts_when_signed_by_this_endpoint(tmp_path):
    """Anyone with the volume could otherwise switch the fast path off for every worker."""
    ArtifactFolder(tmp_path, trusted=False, secret=b"someone else").record_failure(KEY, "forged", now=1000.0)
    assert ArtifactFolder(tmp_path, trusted=False, secret=SECRET).recent_failure(KEY, now=1001.0) is None
    assert (tmp_path / f"{KEY}.failed.json.rejected").exists()
    ArtifactFolder(tmp_path, trusted=False, secret=SECRET).record_failure(KEY, "real", now=1000.0)
    note = json.loads((tmp_path / f"{KEY}.failed.json").read_text())
    note["at"] = 1000.0 + 10 ** 6                                                     # pushed into the future
    (tmp_path / f"{KEY}.failed.json").write_text(json.dumps(note))
    assert ArtifactFolder(tmp_path, trusted=False, secret=SECRET).recent_failure(KEY, now=1001.0) is None


def test_no_failure_note_without_the_secret_or_in_the_baked_folder(tmp_path):
    for folder in (ArtifactFolder(tmp_path, trusted=False, secret=None), ArtifactFolder(tmp_path, trusted=True)):
        folder.record_failure(KEY, "failed", now=1000.0)
        assert folder.recent_failure(KEY, now=1001.0) is None
    assert list(tmp_path.iterdir()) == []


def test_a_worker_that_died_while_loading_leaves_a_marker_the_next_one_reads(tmp_path):
    """A package that crashes the serving process must not crash every worker after it (a crash loop)."""
    from comfy_nodes.flux_fast.artifacts import LOAD_GRACE_S

    shared = ArtifactFolder(tmp_path, trusted=False, secret=SECRET)
    assert shared.mark_loading(KEY, now=1000.0) is None                 # nothing published: nothing to load
    shared.write(KEY, _packages())
    marker = shared.mark_loading(KEY, now=1000.0)
    assert marker is not None and marker.exists()
    assert shared.died_loading(KEY, now=1000.0 + 5) is None              # a worker loading right now is alive
    said = shared.died_loading(KEY, now=1000.0 + LOAD_GRACE_S + 1)       # it never removed its marker
    assert said and "died while loading" in said and marker.name in said
    assert not marker.exists() and shared.died_loading(KEY, now=2000.0) is None   # said once


def test_loading_markers_are_signed_and_never_written_where_they_would_not_count(tmp_path):
    ArtifactFolder(tmp_path, trusted=False, secret=SECRET).write(KEY, _packages())
    forged = tmp_path / f"{KEY}.loading.1-abcd.json"
    forged.write_text(json.dumps({"format": 3, "key": KEY, "at": 0.0, "hmac": "0" * 64}))
    assert ArtifactFolder(tmp_path, trusted=False, secret=SECRET).died_loading(KEY, now=10 ** 6) is None
    assert not forged.exists()                                            # set aside as *.rejected
    baked = tmp_path / "baked"
    baked.mkdir()
    ArtifactFolder(baked, trusted=True).write(KEY, _packages())
    assert ArtifactFolder(baked, trusted=True).mark_loading(KEY, now=1.0) is None   # the image is read-only
    assert ArtifactFolder(tmp_path, trusted=False, secret=None).mark_loading(KEY, now=1.0) is None
