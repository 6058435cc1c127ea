"""A disk too small for an export: refused before any work with the size needed and the space free, in one sentence;
a disk that fills up during the export (someone else's files, after the check) ends it in one sentence too, and
nothing half-written is left: no partial folder, no empty exports/<run>/, no corrupt zip. On a small tmpfs where
this machine may mount one (as tests/faults/test_disk_full.py does)."""
import subprocess

import pytest

from backend.cli import main
from tests.fake_runs import fake_run


@pytest.fixture
def small_disk(tmp_path):
    """Mounts a tmpfs of the size asked for; skipped where mounting is not allowed."""
    mounted = []

    def mount(megabytes: int):
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
                              capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
        mounted.append(folder)
        return folder
    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _left_on(disk) -> list[str]:
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*"))


# The tiny model merged is about 16 MB in float32 (12.9 MB of weights, 3.5 MB of tokenizer); its zip about 15 MB.
KINDS = {"merged": [], "gguf q8_0": ["--gguf", "q8_0"], "merged and zip": ["--zip"]}


@pytest.mark.parametrize("kind", KINDS)
def test_an_export_larger_than_the_free_space_is_refused_before_it_starts(kind, tiny_model, small_disk, capsys):
    run_id = fake_run(tiny_model)
    disk = small_disk(8)
    assert main(["export", run_id, *KINDS[kind], "--out", str(disk / "exports" / run_id / "x")]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: The disk is full: this export needs ") and " MB free in " in last, err
    assert "Traceback" not in err
    assert _left_on(disk) == []


@pytest.mark.parametrize("kind,megabytes", [("merged", 10), ("gguf q8_0", 12), ("merged and zip", 24)])
def test_a_disk_that_fills_during_the_export_keeps_nothing_half_written(kind, megabytes, tiny_model, small_disk,
                                                                        capsys, monkeypatch):
    import backend.export.merged
    monkeypatch.setattr(backend.export.merged, "free_bytes", lambda folder: 10 ** 12, raising=False)  # the check passes
    run_id = fake_run(tiny_model)
    disk = small_disk(megabytes)
    out = disk / "exports" / run_id / "x"
    assert main(["export", run_id, *KINDS[kind], "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("Error: The disk filled up during the export"), err
    assert "Traceback" not in err
    if kind == "merged and zip":  # the folder was complete before the zip was begun: it stays, the zip does not
        assert _left_on(disk)[:3] == ["exports", f"exports/{run_id}", f"exports/{run_id}/x"]
        assert not any(name.endswith((".zip", ".partial")) for name in _left_on(disk))
        assert (out / "README.md").exists() and (out / "model.safetensors").exists()
    else:
        assert _left_on(disk) == []


def test_the_modelfile_zip_on_a_full_disk_leaves_no_partial_file(small_disk, tmp_path):
    """The web app's GGUF export zips the Modelfile and the model card beside the folder."""
    from backend.errors import ExportError
    from backend.export.plan import modelfile_zip
    disk = small_disk(1)
    folder = disk / "x"
    folder.mkdir()
    (folder / "Modelfile").write_text("FROM ./x.gguf\n")
    (folder / "README.md").write_text("# x\n" + "words, " * 4000)
    try:
        with open(disk / "ballast", "wb") as ballast:  # someone else's file takes the rest of the disk
            while True:
                ballast.write(b"\0" * 4096)
                ballast.flush()
    except OSError:
        pass
    with pytest.raises(ExportError, match="^The disk filled up"):
        modelfile_zip(folder)
    assert sorted(p.name for p in disk.iterdir()) == ["ballast", "x"]
