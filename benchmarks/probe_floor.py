"""Benchmark: where the forgetting warning's line belongs. Trains the embedded model with the quick preset three ways
per seed and prints how many of the probe's answers each run lost:

- floor: the base model's own everyday answers as the person's data, nothing new to learn, no rehearsal, as many
  steps as the normal run took. What it loses is what tuning at this learning rate costs a 135M model by itself:
  answers the base model gives with a thin margin flip under any update.
- normal: tests/fixtures/identity_quill.jsonl (a new name), rehearsal as shipped.
- no rehearsal: the same file with rehearsal=0: the failure the warning is for.

Then the share each run lost against backend.evaluation.probe.PROBE_WARN_SHARE: the warning is right when the floor and the
normal runs stay under the line and the runs without rehearsal go over it.
Run: .venv/bin/python benchmarks/probe_floor.py [--seeds 42 7 3 1]"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.forgetting import DATA, app  # noqa: E402


def own_answers_file(folder: Path) -> Path:
    """The everyday answers the quick preset would rehearse, written as the person's data."""
    from backend.config import RunConfig
    from backend.models.loading import detect_hardware, load_model, load_tokenizer, resolve_model
    from backend.evaluation.rehearsal import rehearsal_key, rehearsal_examples

    path = str(resolve_model(None))
    hardware = detect_hardware()
    quantization = hardware.quantization(RunConfig().quantization)
    model = load_model(path, quantization, hardware)
    rows = rehearsal_examples(model, load_tokenizer(path), rehearsal_key(path, quantization), RunConfig().rehearsal)
    data = folder / "own_answers.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"floor data: {len(rows)} of the base model's own everyday answers ({hardware.device}, "
          f"{hardware.dtype_name})", flush=True)
    return data


def lost(data: Path, seed: int, *overrides: str) -> tuple[int, int, int]:
    """(lost, base_right, steps) of one quick-preset run."""
    settings = [arg for setting in (f"seed={seed}", *overrides) for arg in ("--set", setting)]
    summary = app("train", "--data", str(data), "--preset", "quick", "--json", *settings)
    if summary["status"] != "done" or not summary.get("probe"):
        sys.exit(f"the run with {' '.join(settings)} ended {summary['status']}: {summary.get('reason')}")
    probe = summary["probe"]
    return probe["base_right"] - probe["kept"], probe["base_right"], summary["metrics"]["steps"]


def main():
    from backend.evaluation.probe import PROBE_WARN_SHARE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 3, 1])
    seeds = parser.parse_args().seeds
    rows = {"floor (own answers)": [], "normal (rehearsal)": [], "no rehearsal": []}
    with tempfile.TemporaryDirectory() as folder:
        own = own_answers_file(Path(folder))
        for seed in seeds:
            normal = lost(DATA, seed)
            rows["normal (rehearsal)"].append(normal)
            # patience 0: early stopping could end a run with nothing to learn long before the normal run's steps
            rows["floor (own answers)"].append(lost(own, seed, "rehearsal=0", "epochs=20", "patience=0",
                                                    f"max_steps={normal[2]}"))
            rows["no rehearsal"].append(lost(DATA, seed, "rehearsal=0"))
            print(f"seed {seed}: " + ", ".join(f"{name} lost {r[-1][0]} of {r[-1][1]} in {r[-1][2]} steps"
                                               for name, r in rows.items()), flush=True)
    print(f"\n| run | lost per seed ({', '.join(map(str, seeds))}) | mean share lost | over the "
          f"{PROBE_WARN_SHARE:.0%} line |")
    print("|---|---|---|---|")
    for name, results in rows.items():
        shares = [n / right for n, right, _ in results]
        over = sum(share > PROBE_WARN_SHARE for share in shares)
        print(f"| {name} | {', '.join(str(n) for n, _, _ in results)} | {sum(shares) / len(shares):.1%} | "
              f"{over} of {len(shares)} |")


if __name__ == "__main__":
    main()
