"""A progress bar on the terminal for a run, read from the database the worker writes to."""
import sys
import time

from tqdm import tqdm


def follow_run(runner, run_id: str) -> dict:
    bar = None
    seen = 0
    while True:
        run = runner.store.get(run_id)
        if run["status"] == "running" and bar is None and run.get("total_steps"):
            bar = tqdm(total=run["total_steps"], desc=run_id, unit="step", file=sys.stderr)
        if bar is not None:
            metrics = runner.store.metrics(run_id)
            for row in metrics[seen:]:
                bar.n = min(row["step"], bar.total)
                shown = {k: f"{row[k]:.3g}" for k in ("train_loss", "eval_loss", "tokens_per_second") if k in row}
                bar.set_postfix(shown, refresh=False)
                bar.refresh()
            seen = len(metrics)
        if run["status"] in ("done", "failed", "stopped"):
            if bar is not None:
                bar.close()
            return run
        time.sleep(0.5)
