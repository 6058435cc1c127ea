"""benchmarks/gpu.py, the GPU check, runs here on the CPU with one tiny shape through the same code: it cannot rot."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def first_table(text: str) -> list[dict]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| method | size | variant | steps"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))))
    return rows


def test_gpu_check_runs_on_the_cpu_and_prints_one_row_per_method_and_variant(tmp_path, embedded_model):
    out = tmp_path / "gpu.md"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--cpu-smoke", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=1200, env=dict(os.environ))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "matmul peak" in result.stdout and "SFT tiny: 2 steps" in result.stdout  # printed as it goes
    rows = first_table(out.read_text())
    by_name = {(r["method"], r["variant"]): r for r in rows}
    assert set(by_name) == {("sft", "-"), ("dpo", "-"), ("kto", "-"), ("sft", "trl"), ("sft", "gc"), ("sft", "paged8"),
                            ("sft", "bf16"), ("sft", "pf"), ("sft", "pf-flex"), ("sft", "liger"), ("sft", "pf-liger"),
                            ("sft", "gc-offload"),
                            ("sft", "launcher")}  # 1 process through the launcher of several GPUs
    switched_off = {"pf-flex", "liger", "pf-liger", "gc-offload"}  # no CPU path: each says why in its row
    for row in rows:
        assert row["size"] == "tiny", row
        if row["variant"] in switched_off:
            assert row["steps"].startswith("off on the CPU"), row
            continue
        assert row["steps"] == "2", row
        assert float(row["tokens/s"].replace(",", "")) > 0 and float(row["s/step"]) > 0
        assert float(row["peak GB estimated"]) > 0 and float(row["MFU"].rstrip("%")) > 0
        assert row["peak GB measured"] == "-"  # no allocator to read on the CPU
        assert row["method"] != "sft" or float(row["x TRL"]) > 0  # against plain TRL on the same rows
    assert by_name[("sft", "trl")]["x TRL"] == "1.00" and by_name[("sft", "trl")]["grad ckpt"] == "on"  # TRL's default
    assert "plain TRL" in by_name[("sft", "trl")]["note"]
    assert by_name[("sft", "gc")]["grad ckpt"] == "on" and by_name[("sft", "-")]["grad ckpt"] == "off"
    assert "logits differ by" in by_name[("sft", "pf")]["note"]  # packed rows checked against each row alone
    assert "rows of mixed length up to 128 tokens" in out.read_text()
    assert "Command line (`python app.py train --preset quick`, tiny model): done, 2 steps" in out.read_text()
