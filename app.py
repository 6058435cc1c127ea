"""Tuneloop: `python app.py` starts the web app; `python app.py COMMAND` runs a command (see --help)."""
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")



served = []  # set once the web app was started: its process ends without the interpreter's teardown


def serve(**options) -> int:
    from ui.app import serve as serve_web_app  # Gradio is imported only when the web app starts
    served.append(True)
    return serve_web_app(**options)


if __name__ == "__main__":
    from backend.cli import main
    code = main(serve=serve)
    if served:  # all closed by now (ui.app.end_process)
        from ui.app import end_process
        end_process(code)
    sys.exit(code)
