"""Validation of a page spread over a helper process (stdlib only, like the rest of the engine).

On the product's machines validation (email-validator, phonenumbers) is most of an import's CPU
and it is one record at a time, pure and independent, so while this process validates part of a
page a helper process validates the rest. ``ParallelValidation`` is created once per run (by
``engine.run`` when asked for helper processes) and closed when the run ends.

* Only a page with at least ``min_records`` records to validate goes to the helper; smaller
  ones (incremental runs) are validated in process, as before. The helper process is started the
  first time a page is big enough, never for a run of small pages.
* The helper computes exactly what this process would: ``validate.check_contact_points`` per
  record (the same functions, so the same results). A record whose validation raises there is
  handed back as "not done" and validated again in process, so its outcome is the one it always
  had. A helper that dies (killed, out of memory) is not restarted: the run carries on in
  process.
* The helper is forked (fast, and it shares this process's loaded modules), asks the kernel to
  kill it when its parent dies (``PR_SET_PDEATHSIG``: a SIGKILLed worker leaves no helper
  behind), ignores SIGINT (the parent decides), and exits when the run closes the pool.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

from sync import validate

# A page needs this many records to validate before the helper takes part: below it, handing
# work over costs about what it saves (measured on 2 cores, docs in the run's report).
DEFAULT_MIN_RECORDS = 400
# Share of a page the helper validates; this process also reads the helper's results back.
DEFAULT_SHARE = 0.5
# How long to wait for a helper's share beyond 10 ms a record before validating it in process.
HELPER_TIMEOUT_SECONDS = 30.0


class ParallelValidation:
    def __init__(self, processes: int = 1, *, min_records: int = DEFAULT_MIN_RECORDS,
                 share: float = DEFAULT_SHARE, start_method: str = "fork"):
        self.processes = max(0, int(processes))
        self.min_records = max(1, int(min_records))
        self.share = min(0.9, max(0.1, float(share)))
        self.start_method = start_method
        self._pool: ProcessPoolExecutor | None = None
        self.broken = self.processes == 0 or start_method not in multiprocessing.get_all_start_methods()
        self.pages = 0  # pages validated with the helper
        self.records = 0  # records the helper validated

    def contact_points(self, records: list, default_region: str | None) -> list | None:
        """(EmailResult, PhoneResult), or None ("validate in process"), per record of ``records``
        (mapped records); None for the whole page when it is not worth the helper."""
        if self.broken or len(records) < self.min_records:
            return None
        pool = self._started()
        if pool is None:
            return None
        count = len(records)
        cut = int(count * self.share)
        chunks = _split(records[:cut], self.processes)
        futures = []
        try:
            for chunk in chunks:
                futures.append(pool.submit(_check_chunk, [(r.email, r.phone, r.country) for r in chunk],
                                           default_region))
        except Exception:  # noqa: BLE001 - a broken pool: validate in process
            self._break()
            return None
        mine = [_checked(r.email, r.phone, r.country, default_region) for r in records[cut:]]
        theirs: list = []
        # A helper that stops answering (stuck, stopped) must not hold the run: its share is
        # validated in process after this long (validation is ~0.1 ms a record).
        timeout = HELPER_TIMEOUT_SECONDS + 0.01 * cut
        for chunk, future in zip(chunks, futures):
            try:
                theirs += future.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - the helper died or hung: those records in process
                self._break()
                theirs += [None] * len(chunk)
        self.pages += 1
        self.records += cut
        return theirs + mine

    def _started(self) -> ProcessPoolExecutor | None:
        if self._pool is None:
            try:
                # Buffered output would be written again by the forked helper when it exits.
                for stream in (sys.stdout, sys.stderr):
                    if stream is not None:
                        stream.flush()
                context = multiprocessing.get_context(self.start_method)
                self._pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=context,
                                                 initializer=_helper_started, initargs=(os.getpid(),))
            except Exception:  # noqa: BLE001 - no helper: validate in process
                self._break()
        return self._pool

    def _break(self) -> None:
        self.broken = True
        pool = self._pool
        # A hung helper would outlive shutdown(wait=False): end it (3.11 has no public way to
        # reach the pool's processes; 3.14's terminate_workers is this).
        helpers = list((getattr(pool, "_processes", None) or {}).values()) if pool else []
        self.close(wait=False)
        for helper in helpers:
            try:
                helper.kill()
            except Exception:  # noqa: BLE001 - already gone
                pass

    def close(self, wait: bool = True) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> "ParallelValidation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _split(items: list, parts: int) -> list[list]:
    size = -(-len(items) // max(1, parts))
    return [items[i:i + size] for i in range(0, len(items), size)] if items else []


def _checked(email, phone, country, default_region):
    try:
        return validate.check_contact_points(email, phone, country, default_region)
    except Exception:  # noqa: BLE001 - validated again in process, where it raises as it always did
        return None


def _check_chunk(items: list[tuple], default_region: str | None) -> list:
    return [_checked(email, phone, country, default_region) for email, phone, country in items]


def _helper_started(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except Exception:  # noqa: BLE001 - then only the closed pipe ends the helper
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(0)
