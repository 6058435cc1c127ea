#!/usr/bin/env bash
# Gathers into .whl/ (git-ignored) what the bare GPU machine lacks for benchmarks/gpu.py, so that it can travel with
# the working tree (64 MiB in all). That machine has Python 3.12, torch 2.11 (CUDA 13), transformers 5.17, peft,
# accelerate 1.15, safetensors, tokenizers 0.23, huggingface_hub 1.33, pandas, pyarrow, numpy, pyyaml, tqdm, jinja2,
# xxhash, psutil, python-dateutil, tabulate, pluggy, typer, and no network (/work/.library/device/KINDS.md).
#
# Carried: our pinned trl, transformers, peft and datasets (the versions the tests run here), their pure-Python needs
# the machine lacks or may hold in too old a version, sqlite-utils and its own, and bitsandbytes cut down to its CUDA 13
# library (the wheel is 125 MB unpacked, libbitsandbytes_cuda130.so 4 MB), and Liger's kernels for the 'liger' rows
# (liger-kernel 0.8.5: pure Python and Triton, 0.9 MB; it needs torch and triton, which the machine has). Also the
# built-in tokenizer (.whl/tokenizer), since the built-in model's package (93 MB) cannot travel.
#
# Run here: bash benchmarks/gpu_wheels.sh    (PYTHON=... to choose the Python that has the project's requirements)
# Then on the device machine, see the command at the top of benchmarks/gpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
OUT=.whl
WHEELS=(
    trl==1.16.0 transformers==5.23.0 peft==0.21.2 datasets==5.2.0 bitsandbytes==0.50.2
    dill==0.4.1 multiprocess==0.70.19 fsspec==2026.9.0 regex==2026.11.19
    sqlite-utils==4.2.1 sqlite-fts4==1.0.3 click-default-group==1.2.4 click==8.5.1
    liger-kernel==0.8.5
)
rm -rf "$OUT"
mkdir -p "$OUT"
platforms=()
for n in 2_17 2_24 2_27 2_28 2_31 2_34 2_35 2_39; do platforms+=(--platform "manylinux_${n}_x86_64"); done
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d "$OUT" "${WHEELS[@]}"

# bitsandbytes: keep only the CUDA 13 library (and the small CPU one), and write a RECORD that matches.
"$PYTHON" - "$OUT" <<'EOF'
import sys
import zipfile
from pathlib import Path

wheel = next(Path(sys.argv[1]).glob("bitsandbytes-*.whl"))
keep_libs = ("libbitsandbytes_cuda130.so", "libbitsandbytes_cpu.so")
trimmed = wheel.with_suffix(".tmp")
with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as target:
    dropped = {n for n in source.namelist()
               if Path(n).name.startswith("libbitsandbytes_") and Path(n).name not in keep_libs}
    if not any(Path(n).name == keep_libs[0] for n in source.namelist()):
        sys.exit(f"{wheel.name} has no {keep_libs[0]}")
    for info in source.infolist():
        if info.filename in dropped:
            continue
        data = source.read(info.filename)
        if info.filename.endswith(".dist-info/RECORD"):
            lines = data.decode().splitlines()
            data = ("\n".join(line for line in lines if line.split(",")[0] not in dropped) + "\n").encode()
        target.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
trimmed.replace(wheel)
print(f"bitsandbytes: dropped {len(dropped)} libraries, kept {', '.join(keep_libs)}")
EOF

# The built-in tokenizer, as gpu.py reads it (--tokenizer defaults to .whl/tokenizer).
"$PYTHON" -c "
import sys; sys.path.insert(0, '.')
from backend.models.loading import load_tokenizer
load_tokenizer().save_pretrained('$OUT/tokenizer')
"

grep -qx '.whl/' .gitignore || echo '.whl/' >> .gitignore
ls -la "$OUT"
echo "wheels and tokenizer: $(du -sh "$OUT" | cut -f1)"
echo "tracked files: $(git ls-files -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1) bytes"
echo "together: $(( ($(du -sb "$OUT" | cut -f1) + $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)) / 1048576 )) MiB of the 64 MiB that can travel"
