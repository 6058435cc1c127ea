#!/usr/bin/env bash
# Build the Docker image where there is no Docker engine and no container registry, then run its default
# command from the mounted image and check that it serves, with a password, the built-in model inside.
#
#   sudo scripts/docker-check.sh          (needs root, podman and debootstrap: apt-get install -y podman debootstrap)
#
# 1. makes the base image (Debian bookworm's Python 3.11, by debootstrap) if it is missing;
# 2. builds ./Dockerfile unchanged with podman (--isolation chroot), the base given as BASE_IMAGE; this
#    machine's local pip folders (torch's CPU wheel) are mounted into the build and pip is pointed at them;
# 3. mounts the image (podman create + mount: `podman run` cannot start containers here) and runs its
#    entrypoint and default command with chroot, as the image's user, in a private network namespace
#    (no network at all: the app runs offline, and port 7860 there clashes with nothing);
# 4. checks the app (scripts/docker_run_check.py); 5. prints the build time and the image size.
# The images are kept (the next run reuses the base and the build cache): localhost/tuneloop-base:bookworm
# and localhost/tuneloop:latest unless BASE_IMAGE / IMAGE say otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE=${BASE_IMAGE:-localhost/tuneloop-base:bookworm}
IMAGE=${IMAGE:-localhost/tuneloop:latest}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

[ "$(id -u)" = 0 ] || { echo "Error: run this as root (podman builds and chroot need it)." >&2; exit 1; }
for tool in podman debootstrap unshare chroot python3; do
    command -v "$tool" >/dev/null || { echo "Error: $tool is missing: apt-get install -y podman debootstrap" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/tuneloop-docker-check.XXXXXX)
CONTAINER=""
cleanup() {
    if [ -n "$CONTAINER" ]; then podman umount "$CONTAINER" >/dev/null 2>&1 || true; podman rm -f "$CONTAINER" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Podman without a cgroup manager or ulimits: this machine is itself a container.
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = []
cgroups = "disabled"
[engine]
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"

echo "== 1. Base image $BASE_IMAGE"
if podman image exists "$BASE_IMAGE"; then
    echo "present"
else
    echo "missing: making it from Debian bookworm with debootstrap (a few minutes)"
    start=$SECONDS
    if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$WORK/rootfs" \
            "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1; then
        tail -20 "$WORK/debootstrap.log" >&2; echo "Error: debootstrap failed (log above)." >&2; exit 1
    fi
    rm -rf "$WORK"/rootfs/var/cache/apt/*.bin "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    tar -C "$WORK/rootfs" -c . | podman import -q --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE_IMAGE" >/dev/null
    rm -rf "$WORK/rootfs"
    echo "made in $((SECONDS - start)) s"
fi

echo "== 2. Building $IMAGE"
# This machine's pip takes torch's CPU wheel (and other wheels) from local folders named in its configuration.
# Mount those into the build and point pip at them (with this machine's certificate bundle), so the build
# does not fetch several GB of CUDA packages. A user's build has none of this and gets torch from PyPI.
mounts=()
{
    echo "[global]"
    links=""; for path in $(pip config get global.find-links 2>/dev/null || true); do
        [ -d "$path" ] && { mounts+=(-v "$path:$path:ro"); links="$links $path"; }
    done
    [ -n "$links" ] && echo "find-links =$links"
    index=""; for url in $(pip config get global.extra-index-url 2>/dev/null || true); do
        # a local index (file:///X/simple) links to its wheels beside it (/X/files): mount the folder above
        path=${url#file://}; path=${path%/}; top=${path%/simple}
        [ "$path" != "${url%/}" ] && [ -d "$path" ] && { mounts+=(-v "$top:$top:ro"); index="$index $url"; }
    done
    [ -n "$index" ] && echo "extra-index-url =$index"
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        mounts+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/tuneloop-build-ca.crt:ro); echo "cert = /etc/tuneloop-build-ca.crt"
    fi
} >"$WORK/pip.conf"
mounts+=(-v "$WORK/pip.conf:/etc/pip.conf:ro")
echo "pip inside the build:"; sed 's/^/    /' "$WORK/pip.conf"
start=$SECONDS
if ! podman build --isolation chroot --format docker --layers -t "$IMAGE" --build-arg BASE_IMAGE="$BASE_IMAGE" \
        "${mounts[@]}" . >"$WORK/build.log" 2>&1; then
    tail -40 "$WORK/build.log" >&2; echo "Error: the image did not build (log above)." >&2; exit 1
fi
BUILD_S=$((SECONDS - start))
grep -E '^STEP|^--> Using cache' "$WORK/build.log" | sed 's/^/    /'
cached=$(grep -c '^--> Using cache' "$WORK/build.log" || true)
echo "built in ${BUILD_S} s (${cached} steps from the build cache)"

echo "== 3. Mounting the image and running its default command (chroot, no network)"
podman image inspect "$IMAGE" >"$WORK/image.json"
CONTAINER=$(podman create "$IMAGE")
ROOT=$(podman mount "$CONTAINER")
mkdir "$WORK/data"  # a fresh, empty volume for /data, as `docker run -v tuneloop-data:/data` gives
unshare --mount --net --propagation private \
    python3 scripts/docker_run_check.py --root "$ROOT" --image-json "$WORK/image.json" --data "$WORK/data"

echo "== 5. Figures"
SIZE=$(podman image inspect "$IMAGE" --format '{{.Size}}')
BASE_SIZE=$(podman image inspect "$BASE_IMAGE" --format '{{.Size}}')
echo "build time: ${BUILD_S} s (${cached} steps from the build cache)"
echo "image size: $((SIZE / 1000000)) MB ($IMAGE; base $BASE_IMAGE: $((BASE_SIZE / 1000000)) MB)"
echo "docker-check: passed"
