"""Running the work: the durable job runner and its queue, the launcher and the worker processes it starts (one per run, one per rank), and the lock that keeps one trainer at a time."""
