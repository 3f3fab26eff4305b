"""The boot-time page-cache read of the model files (handler/prefetch.py): it reads every manifest file it can find,
in full, from the first model folder that has it, and never risks the container's memory or its start."""

import logging

from handler import prefetch

MANIFEST = """
diffusion_models some/repo flux1-dev-fp8-e4m3fn.safetensors {h}
text_encoders some/repo t5xxl_fp8_e4m3fn.safetensors {h}
vae some/repo ae.safetensors {h}
""".format(h="0" * 64)


def write(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x01" * size)
    return path


def test_reads_every_file_found_in_the_first_folder_that_has_it(tmp_path, caplog):
    manifest = tmp_path / "models.txt"
    manifest.write_text(MANIFEST)
    image, volume = tmp_path / "image", tmp_path / "volume"
    write(image / "diffusion_models" / "flux1-dev-fp8-e4m3fn.safetensors", 3 * prefetch.CHUNK + 5)
    write(volume / "diffusion_models" / "flux1-dev-fp8-e4m3fn.safetensors", 7)      # shadowed by the image's
    write(volume / "vae" / "ae.safetensors", 1000)
    files = prefetch.find_files(manifest, [image, volume])                        # the T5 file is nowhere
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "image/diffusion_models/flux1-dev-fp8-e4m3fn.safetensors", "volume/vae/ae.safetensors"]
    with caplog.at_level(logging.INFO, logger="handler.prefetch"):
        result = prefetch.prefetch(files, limit=None)
    assert result["bytes"] == 3 * prefetch.CHUNK + 5 + 1000
    assert "GiB/s" in caplog.text


def test_skipped_when_the_files_would_not_fit_in_memory(tmp_path, caplog):
    big = write(tmp_path / "m" / "vae" / "ae.safetensors", 10_000)
    with caplog.at_level(logging.INFO, logger="handler.prefetch"):
        assert prefetch.prefetch([big], limit=10_000)["bytes"] == 0
    assert "skipped" in caplog.text


def test_the_command_never_fails_the_start(tmp_path):
    assert prefetch.main(["--manifest", str(tmp_path / "missing.txt"), "--models-dir", str(tmp_path)]) == 0
    assert prefetch.main(["--models-dir", str(tmp_path / "nothing-here")]) == 0
    assert prefetch.memory_limit_bytes() is None or prefetch.memory_limit_bytes() > 0


def test_a_smaller_read_size_still_reads_every_byte(tmp_path, caplog):
    """PREFETCH_READ_MIB changes how much each read asks the disk for, never what ends up read; the log says which."""
    odd = write(tmp_path / "m" / "vae" / "ae.safetensors", 2 * 2**20 + 4097)
    with caplog.at_level(logging.INFO, logger="handler.prefetch"):
        result = prefetch.prefetch([odd], limit=None, chunk=prefetch.read_size("1"))
    assert result["bytes"] == 2 * 2**20 + 4097
    assert "1 MiB reads" in caplog.text


def test_a_bad_read_size_falls_back_to_the_default_and_says_why(caplog):
    with caplog.at_level(logging.WARNING, logger="handler.prefetch"):
        for raw in ("0", "-2", "abc", "nan", "inf", "1000"):
            assert prefetch.read_size(raw) == prefetch.CHUNK, raw
    assert "PREFETCH_READ_MIB='abc'" in caplog.text and "<= 256" in caplog.text
    assert prefetch.read_size("0.5") == 2**19 and prefetch.read_size("0.0001") == 4096     # whole pages


def test_the_command_reads_with_the_size_it_is_given(tmp_path, caplog):
    manifest = tmp_path / "models.txt"
    manifest.write_text(MANIFEST)
    write(tmp_path / "m" / "vae" / "ae.safetensors", 3000)
    with caplog.at_level(logging.INFO, logger="handler.prefetch"):
        assert prefetch.main(["--manifest", str(manifest), "--models-dir", str(tmp_path / "m"), "--read-mib", "2"]) == 0
    assert "2 MiB reads" in caplog.text and "0.00 GiB" in caplog.text
