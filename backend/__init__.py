"""Tuneloop's headless core: data, training, generation and export. Never imports Gradio.

Its packages, from the edges down (a module imports its own layer and those below, never one above; the layers are
checked by tests/test_architecture.py):
- cli/: the command line;
- jobs/: the durable job runner, its launcher and worker processes;
- train/ and export/: training a run; a finished run out of the app (merged, adapter, GGUF, the Hub);
- evaluation/: did it learn, did it keep (the behaviour, held-back answers, the forgetting probe, the rehearsal,
  the diagnosis, the card);
- labels/: the labels people give, their agreement, and training on them;
- data/: reading, checking and storing the user's examples;
- models/: base models, their memory, whether a run can start here, and the pool that answers chat;
- the modules here: settings (config, presets), the stores (db, runs, accounts), workspace, limits, errors, words.
"""
