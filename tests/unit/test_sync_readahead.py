"""sync.readahead: the next page is fetched in a thread while the current one is worked on. Pages
keep their order, the source's errors come out where they did without it, the thread is one page
ahead at most, the source is only ever touched by that one thread, and no thread outlives
``close()`` whatever way the consumer leaves."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest

from sync.engine import FAILED_RUN, PARTIAL, SUCCEEDED, run
from sync.errors import SinkConflict, SourceLimitReached, SourceTransient
from sync.fakes import ListLog, PagedSource, generated_contacts
from sync.memory import MemorySink
from sync.plan import ConsentRule, Plan
from sync.readahead import ReadAhead


class Recorded:
    """A generator source that notes which thread did what, and when."""

    def __init__(self, pages, error_at: int | None = None, error: BaseException | None = None,
                 delay: float = 0.0):
        self.pages = pages
        self.error_at = error_at
        self.error = error
        self.delay = delay
        self.threads: set[int] = set()
        self.asked = 0  # pages asked for (fetches started)
        self.closed = False
        self.log: list[str] = []

    def __iter__(self):
        self.threads.add(threading.get_ident())
        try:
            for number, page in enumerate(self.pages, 1):
                self.threads.add(threading.get_ident())
                self.asked = number
                self.log.append(f"fetch {number}")
                if self.delay:
                    time.sleep(self.delay)
                if number == self.error_at:
                    raise self.error
                yield page
        finally:
            self.threads.add(threading.get_ident())
            self.closed = True


def pages(n: int, size: int = 3) -> list[list[int]]:
    return [list(range(i * size, (i + 1) * size)) for i in range(n)]


def no_read_ahead_threads() -> bool:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith("sync-read-ahead")]:
            return True
        time.sleep(0.01)
    return False


def test_pages_come_out_in_order_and_the_thread_ends_with_them():
    source = Recorded(pages(7))
    with ReadAhead(source) as ahead:
        assert list(ahead) == pages(7)
        assert not ahead.running
    assert source.closed
    assert threading.get_ident() not in source.threads and len(source.threads) == 1
    assert list(ahead) == []  # exhausted: nothing more is asked
    assert no_read_ahead_threads()


def test_an_empty_source_ends_at_once():
    with ReadAhead(Recorded([])) as ahead:
        assert list(ahead) == []


def test_the_next_page_is_fetched_while_the_current_one_is_worked_on_and_never_more():
    source = Recorded(pages(5), delay=0.05)
    with ReadAhead(source) as ahead:
        assert source.asked == 0  # nothing happens before the first page is asked for
        first = next(ahead)
        assert first == pages(5)[0]
        time.sleep(0.3)  # "work" on page 1: page 2 is fetched meanwhile, page 3 is not
        assert source.asked == 2 and ahead.fetched == 2
        assert ahead._results.qsize() == 1  # page 2 is waiting, fetched before it was asked for
        assert next(ahead) == pages(5)[1]
        time.sleep(0.3)
        assert source.asked == 3
    assert no_read_ahead_threads()


@pytest.mark.parametrize("error_at", [1, 2, 4])
def test_an_error_comes_out_after_the_pages_before_it_the_same_object(error_at):
    error = SourceLimitReached()
    source = Recorded(pages(5), error_at=error_at, error=error)
    got = []
    with ReadAhead(source) as ahead:
        with pytest.raises(SourceLimitReached) as raised:
            for page in ahead:
                got.append(page)
        assert raised.value is error
        assert got == pages(5)[:error_at - 1]
        assert not ahead.running
        assert list(ahead) == []  # nothing more after the error
    assert source.asked == error_at and source.closed


def test_an_unexpected_error_is_raised_as_it_is():
    source = Recorded(pages(3), error_at=2, error=KeyError("boom"))
    with ReadAhead(source) as ahead, pytest.raises(KeyError, match="boom"):
        list(ahead)


def test_an_error_from_iter_itself_comes_out_of_the_first_next():
    class Broken:
        def __iter__(self):
            raise SourceTransient("no")

    with ReadAhead(Broken()) as ahead, pytest.raises(SourceTransient):
        next(ahead)


def test_an_early_stop_closes_the_source_in_its_own_thread_and_ends_the_thread():
    source = Recorded(pages(50))
    ahead = ReadAhead(source)
    for number, _ in enumerate(ahead, 1):
        if number == 3:
            break
    ahead.close()
    assert not ahead.running and no_read_ahead_threads()
    assert source.closed and len(source.threads) == 1
    assert source.asked <= 4  # page 4 at most was fetched ahead
    assert list(ahead) == []


def test_close_waits_for_a_fetch_in_flight_and_fetches_nothing_after_it():
    source = Recorded(pages(10), delay=0.2)
    ahead = ReadAhead(source)
    next(ahead)
    deadline = time.monotonic() + 5
    while source.asked < 2 and time.monotonic() < deadline:  # page 2 is being fetched
        time.sleep(0.005)
    t = time.perf_counter()
    ahead.close()
    assert time.perf_counter() - t >= 0.05  # it waited for the fetch in flight
    assert not ahead.running and source.closed and source.asked == 2


def test_an_exception_in_the_consumer_leaves_no_thread_when_closed_by_with():
    source = Recorded(pages(10), delay=0.01)
    with pytest.raises(RuntimeError, match="job timeout"):
        with ReadAhead(source) as ahead:
            for number, _ in enumerate(ahead, 1):
                if number == 2:
                    raise RuntimeError("job timeout")
    assert no_read_ahead_threads() and source.closed


def test_close_before_any_page_starts_nothing():
    source = Recorded(pages(3))
    ahead = ReadAhead(source)
    ahead.close()
    assert source.asked == 0 and not ahead.running
    assert list(ahead) == []


def test_the_thread_works_inside_the_given_context():
    seen = []

    @contextmanager
    def context():
        seen.append(("enter", threading.get_ident()))
        yield
        seen.append(("exit", threading.get_ident()))

    class Source:
        def __iter__(self):
            for page in pages(2):
                seen.append(("fetch", threading.get_ident()))
                yield page

    with ReadAhead(Source(), context=context) as ahead:
        assert list(ahead) == pages(2)
    kinds = [kind for kind, _ in seen]
    assert kinds == ["enter", "fetch", "fetch", "exit"]
    assert len({ident for _, ident in seen}) == 1 and seen[0][1] != threading.get_ident()


def test_a_context_that_cannot_be_entered_fails_the_first_next():
    def context():
        raise LookupError("no application")

    with ReadAhead(Recorded(pages(2)), context=context) as ahead, pytest.raises(LookupError):
        next(ahead)


# --- through the engine ------------------------------------------------------------------------------

ORG = "00DDn00000Org1AAA"


def plan() -> Plan:
    return Plan(org_id=ORG, object_name="Contact", plan_id=1,
                consent=ConsentRule(path="Consent_Status__c", opted_in_values=("Granted",)))


def test_the_engine_gives_the_same_summary_and_participants_through_read_ahead():
    records = generated_contacts(1000)

    def once(read_ahead: bool):
        sink = MemorySink()
        source = PagedSource(records, page_size=150)
        with (ReadAhead(source) if read_ahead else _Plain(source)) as pages_:
            summary = run(plan(), pages_, sink, ListLog())
        return summary, sorted((p.id, sorted(p.values.items(), key=str))
                               for p in sink.participants.values())

    plain, with_read_ahead = once(False), once(True)
    assert with_read_ahead[0].status == plain[0].status == SUCCEEDED
    assert (with_read_ahead[0].counts, with_read_ahead[0].pages, with_read_ahead[0].cursor) == \
        (plain[0].counts, plain[0].pages, plain[0].cursor)
    assert with_read_ahead[1] == plain[1]


def test_a_source_error_mid_run_ends_the_engine_run_as_without_read_ahead():
    records = generated_contacts(600)
    source = Recorded([records[i:i + 200] for i in range(0, 600, 200)], error_at=3,
                      error=SourceLimitReached())
    sink = MemorySink()
    with ReadAhead(source) as ahead:
        summary = run(plan(), ahead, sink, ListLog())
    assert (summary.status, summary.pages, summary.fetched) == (PARTIAL, 2, 400)


def test_a_page_the_engine_cannot_commit_stops_the_thread():
    records = generated_contacts(1000)
    source = Recorded([records[i:i + 100] for i in range(0, 1000, 100)])

    class Conflicting(MemorySink):
        def commit_page(self, changes):
            if changes.page_number == 2:
                raise SinkConflict("unique email key")
            return super().commit_page(changes)

    with ReadAhead(source) as ahead:
        summary = run(plan(), ahead, Conflicting(), ListLog())
    assert (summary.status, summary.pages) == (FAILED_RUN, 1)
    assert source.closed and source.asked <= 3 and no_read_ahead_threads()


class _Plain:
    def __init__(self, source):
        self.source = source

    def __enter__(self):
        return self.source

    def __exit__(self, *exc):
        return None
