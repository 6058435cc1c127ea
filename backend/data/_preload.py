"""Imported once, by the inspection fork server (sandbox.py), never by the app itself: every child forked from it
starts with the reading code imported and the built-in tokenizer loaded (about 15 s here when done per file)."""
from backend.data import pipeline, store  # noqa: F401  (imported for the children)

try:
    from backend.models.loading import load_tokenizer

    load_tokenizer()  # cached: the children's load_tokenizer() returns it at once
except Exception:  # no model yet (or a broken cache): each child loads it, or says why, itself
    pass
