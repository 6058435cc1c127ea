"""Step 4 of scripts/docker-check.sh: run a mounted image's entrypoint and default command with chroot, as the
image's user, and check the app. Standard library only (it runs on the host's Python). Run it as root inside
`unshare --mount --net --propagation private`: the mounts made here vanish with that namespace, and the
namespace has no network, so everything below also shows that the image works offline.

    python3 scripts/docker_run_check.py --root MOUNTED_IMAGE --image-json INSPECT.json --data EMPTY_FOLDER
"""
import argparse
import http.cookiejar
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

PORT = 7860
MODEL = "SmolLM2-135M-Instruct"
failures = []


def check(ok: bool, what: str, detail: str = ""):
    print(f"    {'ok  ' if ok else 'FAIL'} {what}" + (f" ({detail})" if detail else ""), flush=True)
    if not ok:
        failures.append(what)


def sh(*command: str):
    subprocess.run(command, check=True)


class Image:
    def __init__(self, root: Path, inspect: dict):
        config = inspect.get("Config") or {}
        self.root = root
        self.env = dict(item.split("=", 1) for item in config.get("Env") or [])
        self.entrypoint = config.get("Entrypoint") or []
        self.cmd = config.get("Cmd") or []
        self.workdir = config.get("WorkingDir") or "/"
        health = config.get("Healthcheck") or inspect.get("Healthcheck") or inspect.get("HealthCheck") or {}
        self.healthcheck = health.get("Test") or []
        self.user = config.get("User") or "root"
        self.uid, self.gid, self.home = self._lookup(self.user)
        self.env.setdefault("HOME", self.home)

    def _lookup(self, user: str):
        for line in (self.root / "etc/passwd").read_text().splitlines():
            name, _, uid, gid, _, home, _ = line.split(":")
            if user in (name, uid):
                return int(uid), int(gid), home
        raise SystemExit(f"Error: the image's user '{user}' is not in its /etc/passwd.")

    def start(self, argv: list[str], env: dict | None = None, **popen) -> subprocess.Popen:
        """Like `docker run`: the image's environment, user and working folder; argv after the entrypoint."""
        full_env = {**self.env, **(env or {})}
        inner = ["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in full_env.items()], "/bin/sh", "-c",
                 'cd "$0" && exec "$@"', self.workdir, *argv]
        return subprocess.Popen(["chroot", f"--userspec={self.uid}:{self.gid}", str(self.root), *inner],
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, **popen)


def prepare(image: Image, data: Path):
    """What `docker run` sets up: loopback, /etc/hosts, /proc, /dev, and the volume on /data."""
    sh("ip", "link", "set", "lo", "up")
    hosts = data.parent / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    sh("mount", "--bind", str(hosts), str(image.root / "etc/hosts"))
    os.chown(data, image.uid, image.gid)  # a fresh named volume takes the owner of the image's /data
    sh("mount", "--bind", str(data), str(image.root / "data"))
    sh("mount", "-t", "proc", "proc", str(image.root / "proc"))
    sh("mount", "--bind", "/dev", str(image.root / "dev"))
    sh("mount", "-t", "tmpfs", "-o", "mode=1777", "shm", str(image.root / "dev/shm"))


def request(url: str, data: dict | None = None, host: str | None = None, opener=None):
    """(status, body) of a GET, or of a form POST when data is given."""
    req = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode() if data else None)
    if host:
        req.add_header("Host", host)
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_for_port(process: subprocess.Popen, url: str, deadline_s: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < deadline_s and process.poll() is None:
        try:
            request(url)
            return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.5)
    return None


def tree_mtimes(folder: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--image-json", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    inspect = json.loads(args.image_json.read_text())
    image = Image(args.root, inspect[0] if isinstance(inspect, list) else inspect)
    print(f"    user {image.user} (uid {image.uid}), entrypoint {image.entrypoint}, command {image.cmd}")
    check(image.uid != 0, "the image runs as an ordinary user", image.user)
    check(bool(image.healthcheck), "the image has a HEALTHCHECK", " ".join(image.healthcheck))
    check("HF_HUB_OFFLINE" not in image.env, "HF_HUB_OFFLINE is not forced (models can be downloaded)")
    builtin = image.root / "opt/tuneloop/models" / MODEL
    weights = builtin / "model.safetensors"
    check(weights.exists(), "the built-in model is converted inside the image",
          f"{weights.stat().st_size / 1e6:.0f} MB" if weights.exists() else "no model.safetensors")
    before = tree_mtimes(builtin)
    prepare(image, args.data)
    default = image.entrypoint + image.cmd

    print("== 4. Checks")
    # The default command listens on 0.0.0.0: without a password it must refuse to start.
    refused = image.start(default, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = refused.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        refused.kill()
        err = "still running after 300 s"
    check(refused.returncode == 1 and "without a password" in err,
          "without TUNELOOP_AUTH the default command refuses to start", err.strip().splitlines()[-1] if err.strip() else "")

    password = secrets.token_urlsafe(12)
    url = f"http://127.0.0.1:{PORT}"
    log = open(args.data.parent / "app.log", "w+")
    started = time.monotonic()
    app = image.start(default, env={"TUNELOOP_AUTH": f"check:{password}"}, stdout=log, stderr=subprocess.STDOUT,
                      start_new_session=True)
    try:
        answered = wait_for_port(app, f"{url}/", deadline_s=300)
        check(answered is not None, f"with TUNELOOP_AUTH the app answers on port {PORT}",
              f"first answer {answered:.1f} s after start" if answered is not None else f"exit code {app.poll()}")
        if answered is not None:
            check_served(image, app, url, password)
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGTERM)  # like `docker stop`
        try:
            code = app.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(app.pid, signal.SIGKILL)
            code = app.wait()
        check(code == 0, "`docker stop` (SIGTERM) ends the app cleanly", f"exit code {code}")
        log.seek(0)
        text = log.read()
        print(f"    app log ({time.monotonic() - started:.0f} s):\n" + "\n".join(f"      | {line}" for line in text.splitlines()[-8:]))

    # The first use of the built-in model in a fresh workspace: no conversion, no network.
    link = args.data / "models" / MODEL
    check(link.is_symlink() and os.readlink(link) == f"/opt/tuneloop/models/{MODEL}",
          "the entrypoint links the built-in model into the workspace volume", os.readlink(link) if link.is_symlink() else "")
    t0 = time.monotonic()
    generate = image.start(image.entrypoint + ["python", "app.py", "generate", "--base", "--max-new-tokens", "12", "--temperature", "0",
                                               "--prompt", "What is the capital of France?"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = generate.communicate(timeout=600)
    answer = out.strip().splitlines()[-1] if out.strip() else err.strip()[-300:]
    check(generate.returncode == 0 and "Paris" in out, "the built-in model answers offline in a fresh workspace",
          f"{answer!r}, {time.monotonic() - t0:.0f} s including imports")
    converted = [p.name for p in (args.data / "models").iterdir() if p.name.startswith(MODEL) and not p.is_symlink()]
    check(not converted and tree_mtimes(builtin) == before, "nothing was converted at start or first use",
          f"written: {converted}" if converted else "image's model folder unchanged, no copy in the volume")
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in args.data.rglob("*") if not p.is_symlink()}
    check(owners <= {(image.uid, image.gid)}, "everything in the volume belongs to the image's user", str(owners))

    if failures:
        print(f"docker-check: {len(failures)} check(s) failed: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)


def check_served(image: Image, app: subprocess.Popen, url: str, password: str):
    status = Path(f"/proc/{app.pid}/status").read_text()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    check(uid == str(image.uid), "the app process runs as the image's user", f"uid {uid}")
    check(password.encode() not in Path(f"/proc/{app.pid}/cmdline").read_bytes(),
          "the password is not in the process's arguments")
    check(request(f"{url}/")[0] == 200, "the start page (sign-in form) answers")
    check(request(f"{url}/config")[0] == 401, "the app itself needs a password", "GET /config without it: 401")
    check(request(f"{url}/login", {"username": "check", "password": "wrong"})[0] == 400,
          "a wrong password is rejected")
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    signed_in = request(f"{url}/login", {"username": "check", "password": password}, opener=opener)[0]
    config = request(f"{url}/config", opener=opener)
    check(signed_in == 200 and config[0] == 200 and "Tuneloop" in config[1], "the right password signs in",
          f"login {signed_in}, then GET /config {config[0]}")
    check(request(f"{url}/", host="rebind.example:7860")[0] == 400, "a foreign host name is refused")
    health = image.start(image.healthcheck[1:] if image.healthcheck[:1] == ["CMD"] else
                         ["/bin/sh", "-c", image.healthcheck[-1]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    health.wait(timeout=60)
    check(health.returncode == 0, "the HEALTHCHECK command passes with the password on", f"exit code {health.returncode}")


if __name__ == "__main__":
    main()
