"""Following a run on the terminal: a progress bar read from the database the worker writes to, then the result."""
import sys
import time

from tqdm import tqdm

from backend.cli.options import print_json
from backend.evaluation.report_card import learned_verdict
from backend.runs import ENDED


def follow(runner, run_id: str, as_json: bool) -> int:
    """Show the run until it ends (Ctrl-C asks it to stop and save), print the outcome; 0 when it finished."""
    try:
        run = _progress(runner.store, run_id, runner)
    except KeyboardInterrupt:
        print("Stopping after the current step (press Ctrl-C again to leave it running)...", file=sys.stderr)
        runner.stop(run_id)
        run = runner.wait(run_id)
    runner.close(stop_current=False)
    print(f"Run {run_id}: {run['status']}" + (f" - {run['reason']}" if run.get("reason") else ""))
    for key, value in (run.get("final_metrics") or {}).items():
        print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    if run.get("probe"):
        print(f"  {run['probe']['summary']}")
    heldout = run.get("heldout") or {}
    if heldout.get("behaviour"):
        print(f"  held-back examples: it {heldout['behaviour']['summary']}")
        if heldout["behaviour"].get("learned") and heldout["behaviour"].get("reworded"):  # as the Runs tab says it
            print(f"  asked about itself in other words: it {heldout['behaviour']['reworded']['summary']}")
    if heldout.get("count"):
        print(f"  held-back examples ({heldout['metric']}): base {heldout['base_mean']}, tuned {heldout['tuned_mean']}")
    for finding in run.get("diagnosis") or []:
        print(f"  {finding['title']}. {finding['next_step']}")
    verdict = learned_verdict(run) if run["status"] == "done" else None
    if verdict and verdict["learned"] is not None:
        print(f"  Did it learn? {verdict['words']}")
    if as_json:
        print_json({"run_id": run_id, "status": run["status"], "reason": run.get("reason"),
                    "metrics": run.get("final_metrics") or {}, "probe": run.get("probe"), "heldout": run.get("heldout"),
                    "diagnosis": run.get("diagnosis"), "outcome": run.get("outcome"), "verdict": verdict})
    return 0 if run["status"] == "done" else 1


def _progress(store, run_id: str, runner=None) -> dict:
    bar = None
    seen = 0
    said = None
    while True:
        run = store.get(run_id)
        waiting = getattr(runner, "waiting_for", None) if run["status"] == "queued" else None
        if waiting and waiting != said:  # another process trains: say so once per holder
            from backend.jobs.trainer_lock import holder_words
            print(f"Waiting: {holder_words(waiting)}. Run {run_id} starts when it ends.", file=sys.stderr)
        said = waiting or said
        if run["status"] == "running" and bar is None and run.get("total_steps"):
            bar = tqdm(total=run["total_steps"], desc=run_id, unit="step", file=sys.stderr)
        if bar is not None:
            metrics = store.metrics(run_id)
            for row in metrics[seen:]:
                if "checking" in row:  # after training: the checks of what it kept and learned
                    bar.set_description_str(f"{run_id}: checking {row['checking']} ({row['check']} of "
                                            f"{row['of_checks']})", refresh=False)
                bar.n = min(row["step"], bar.total)
                shown = {k: f"{row[k]:.3g}" for k in ("train_loss", "eval_loss", "tokens_per_second") if k in row}
                bar.set_postfix(shown, refresh=False)
                bar.refresh()
            seen = len(metrics)
        if run["status"] in ENDED:
            if bar is not None:
                bar.close()
            return run
        time.sleep(0.5)
