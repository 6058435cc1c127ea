"""One of a run's several training processes ("ranks"), started by backend/jobs/launcher.py through accelerate launch.

Every rank trains on its share of each step's examples. Rank 0 alone writes: the log train.log, the metrics and the
status in the database, checkpoints (the Trainer saves on its main process), the adapter and the probe. The others
write only their own log, train.rank<N>.log, where the reason for a crash can be found. A rank that fails exits
non-zero: torchrun then ends the others, and the launcher records which rank it was.
"""
import os
import sys


def main(argv=None) -> int:
    run_id, home = (argv if argv is not None else sys.argv[1:])[:2]
    os.environ["TUNELOOP_HOME"] = home
    from backend.jobs.worker import _exit_with_parent
    _exit_with_parent()  # the agent's end ends this rank
    from backend.ranks import AGENT_ENV, Ranks
    if os.environ.get(AGENT_ENV) and os.getppid() != int(os.environ[AGENT_ENV]):
        os._exit(3)  # the agent died before the request above took effect

    from backend import workspace
    ranks = Ranks.here()
    log_file = open(workspace.run_dir(run_id) / workspace.log_name(ranks.rank), "a", buffering=1)
    sys.stdout = sys.stderr = log_file
    os.dup2(log_file.fileno(), 1)
    os.dup2(log_file.fileno(), 2)

    # torch's error handler writes an uncaught error where the agent reads it, so the launcher can name it.
    from torch.distributed.elastic.multiprocessing.errors import record
    return record(train)(run_id, ranks)


def train(run_id: str, ranks) -> int:
    from backend.jobs import worker
    from backend.db import connect
    from backend.runs import RunStore

    store = RunStore(connect())
    if ranks.main:
        return 0 if worker.finish(store, run_id, crashes=False) else 1  # records the outcome, as the single worker does
    worker.train_run(store, store.get(run_id), writes=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
