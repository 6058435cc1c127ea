"""Tuneloop: `python app.py` starts the web app; `python app.py COMMAND` runs a command (see --help)."""
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")



def serve(**options) -> int:
    from ui.app import serve as serve_web_app  # Gradio is imported only when the web app starts
    return serve_web_app(**options)


if __name__ == "__main__":
    from backend.cli import main
    sys.exit(main(serve=serve))
