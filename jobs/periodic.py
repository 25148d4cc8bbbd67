"""The periodic tasks, as data: (stable name, "module:function", every N seconds).

The scheduler tick (jobs.scheduler) calls each task at most once per slot of N seconds across
every scheduler running, however many workers run one. A task should be quick: it decides what
is due and enqueues the real work (e.g. one sync run per due plan) rather than doing it.

Add an entry only once its target exists: the scheduler resolves every entry when it starts and
refuses to start if one does not import.
"""

PERIODIC: list[tuple[str, str, int]] = [
    ("scheduler.heartbeat", "jobs.maintenance:record_heartbeat", 30),
    ("sync.enqueue_due_plans", "jobs.sync:enqueue_due_plans", 30),
    ("sync.sweep_lost_runs", "jobs.sync:sweep_lost_runs", 30),
    ("sync.enqueue_reconciliations", "jobs.sync:enqueue_reconciliations", 3600),
    ("invitations.tick", "jobs.invitations:tick", 60),
    ("operations.incident_sweep", "jobs.operations:enqueue_incident_sweep", 60),
    ("operations.token_checks", "jobs.operations:enqueue_token_checks", 900),
    ("operations.outcome_purge", "jobs.operations:enqueue_outcome_purge", 3600),
]
