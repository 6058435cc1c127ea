"""Uploads leave no stray files in the uploads folder (GRADIO_TEMP_DIR, inside the workspace).

Gradio 6.31 leaves two kinds there, named tmpXXXXXXXX at the folder's top:
- gr.File(type="filepath") makes an empty temporary file each time it hands an upload's path to a handler, and
  never removes it (gradio/components/file.py, `_process_single_file`): one per upload. data_file() does without it.
- The upload route streams each file into a temporary file, then moves it into a folder named by its hash; an upload
  cut short (the browser closed, the body cap) leaves its part behind. Those are removed when the app starts.
"""
import re
import time
import types
from pathlib import Path

import gradio as gr
from gradio_client import utils as client_utils
from gradio.utils import NamedString

STRAY = re.compile(r"tmp[a-z0-9_]{8}")  # Python's NamedTemporaryFile names, as Gradio makes them
STRAY_AFTER_S = 60  # a file still being written (another app on the same workspace) is younger than this


def data_file(**options) -> gr.File:
    """A gr.File(type="filepath") that hands the upload's path on without making the empty temporary file. Not a
    subclass: Gradio writes a .pyi file beside the source of every Component subclass when it is defined."""
    box = gr.File(type="filepath", **options)
    box._process_single_file = types.MethodType(_path_only, box)
    return box


def _path_only(box: gr.File, f):
    if box.file_types and not client_utils.is_valid_file(f.path, box.file_types):
        raise gr.Error(f"This kind of file cannot be read here: upload one of {', '.join(box.file_types)}.")
    return NamedString(f.path)


def remove_stray_files(folder: Path) -> int:
    """Remove the temporary files that uploads left at the top of `folder`; how many were removed."""
    removed = 0
    now = time.time()
    for path in folder.glob("tmp*") if folder.is_dir() else ():
        try:
            if STRAY.fullmatch(path.name) and path.is_file() and now - path.stat().st_mtime > STRAY_AFTER_S:
                path.unlink()
                removed += 1
        except OSError:  # gone already, or not ours to remove: the next start tries again
            continue
    return removed
