#!/usr/bin/env bash
# Installs the peers that benchmarks/speed.py measures Tuneloop against, each in a virtual environment of
# its own under .bench/ (git-ignored). None of this is a project requirement.
#
#   .bench/llamafactory   llamafactory 0.9.5 (its CLI: llamafactory-cli)
#
# Plain TRL runs in the project's own venv (.venv, TRL 1.16), so it needs nothing here.
#
# torch: LLaMA-Factory 0.9.5 asks for torchaudio, and torchaudio's newest release (2.11.0) pins torch==2.11.0.
# A CPU build of torch 2.11 cannot be had on these machines: download.pytorch.org does not resolve, and the
# registry's Linux wheel of 2.11.0 is the CUDA build (506 MB, plus cuda-toolkit 13.0.2, cuDNN 9.19, NCCL ...,
# about 3 GB, none of which lies on this disk). So the peer gets the torch 2.13.0 CPU build that lies in
# /opt/wheels (the same torch as Tuneloop, which keeps the comparison about the trainers), and torchaudio
# 2.11.0 without its torch pin: LLaMA-Factory imports torchaudio at start-up but uses it only for audio data.
# The registry's torchaudio links the CUDA torch libraries (libc10_cuda.so), so its compiled parts are removed:
# torchaudio then imports without them, as it does where it is deployed without its libraries (pex), and
# only its audio operators are missing.
# torchvision is left out: the registry's build fails to import beside this torch ("operator
# torchvision::nms does not exist"), and LLaMA-Factory needs it only for images and video.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=.bench/llamafactory
PIP="$VENV/bin/python -m pip install -q --disable-pip-version-check"

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
$PIP torch==2.13.0
$PIP --no-deps llamafactory==0.9.5
# Its own requirements, less the three torch packages (installed above, or on purpose not at all).
"$VENV/bin/python" - > "$VENV/peer-requirements.txt" <<'EOF'
import re
from importlib.metadata import requires
for line in requires("llamafactory"):
    if "extra ==" in line:
        continue
    name = re.split(r"[<>=!~; \[]", line, maxsplit=1)[0].lower()
    if name not in ("torch", "torchaudio", "torchvision"):
        print(line)
EOF
echo "torch==2.13.0" > "$VENV/torch-pin.txt"
$PIP -r "$VENV/peer-requirements.txt" -c "$VENV/torch-pin.txt"
$PIP --no-deps torchaudio==2.11.0
rm -f "$VENV"/lib/python3*/site-packages/torchaudio/lib/*.so
"$VENV/bin/python" -m pip uninstall -q -y torchvision 2>/dev/null || true
"$VENV/bin/python" -c "import torch, torchaudio, llamafactory, transformers, peft, trl; \
print('llamafactory', llamafactory.__version__, '| torch', torch.__version__, '| torchaudio', torchaudio.__version__, \
'| transformers', transformers.__version__, '| peft', peft.__version__, '| trl', trl.__version__)"
