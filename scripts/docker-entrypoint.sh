#!/bin/sh
# Container start-up: check that the workspace volume is ours, link the built-in model (converted in the image)
# into its model cache so that the first start converts nothing, then run the command (the app by default).
set -e
models="${TUNELOOP_MODEL_CACHE:-${TUNELOOP_HOME:-/data}/models}"
if ! mkdir -p "$models" 2>/dev/null || [ ! -w "$models" ]; then
    echo "Error: the workspace ${TUNELOOP_HOME:-/data} is not writable by user $(id -un) (uid $(id -u)):" \
         "give it to that user (e.g. chown -R $(id -u) on the host folder) or use a named volume." >&2
    exit 1
fi
builtin=/opt/tuneloop/models/SmolLM2-135M-Instruct
if [ -d "$builtin" ] && { [ -L "$models/SmolLM2-135M-Instruct" ] || [ ! -e "$models/SmolLM2-135M-Instruct" ]; }; then
    ln -sfn "$builtin" "$models/SmolLM2-135M-Instruct"
fi
exec "$@"
