"""Read-ahead: the next page of a source is fetched in a background thread while the engine works
on the current one (stdlib only, like the rest of the engine).

A page fetch is mostly waiting for Salesforce (the socket, the server's own work); the engine's
work on a page is CPU (mapping, validation, the database). ``ReadAhead(pages)`` overlaps the two:
as soon as the engine takes page N, the thread asks the source for page N+1.

* One page ahead, never more: the thread fetches page N+1 only once page N was taken, so at most
  two pages are alive (the one being worked on, the one fetched) and memory stays flat.
* Everything the source does runs in that one thread: ``iter()``, every ``next()`` and the final
  ``close()`` of a generator source. A source that holds a connection (an HTTP session) is used by
  one thread only, as long as the caller does not use it itself before ``close()`` returned.
* Order and errors are kept: pages come out in the order the source gave them; an exception the
  source raises is raised again, the same object, by the ``next()`` that would have returned the
  page it was fetching, i.e. after every page before it was handed out. After it (and after the
  end) the thread has ended and nothing more is asked of the source.
* ``close()`` (also on leaving ``with``) stops the thread: a fetch in flight is finished (it is
  bounded by the source's own timeouts), nothing further is fetched, a generator source is closed,
  and ``close()`` returns once the thread has ended. Use it on every way out: an early stop of the
  consumer (a failed page) or an exception (a job timeout) must not leave a thread behind.

``context`` (optional): a callable returning a context manager that the thread's work runs inside
(e.g. a Flask application context, so that a token refresh in the middle of paging can reach the
application's settings and database).
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)

_PAGE, _END, _ERROR = "page", "end", "error"


class ReadAhead(Generic[T]):
    def __init__(self, pages: Iterable[T], *,
                 context: Callable[[], AbstractContextManager[Any]] | None = None,
                 name: str = "sync-read-ahead"):
        self._pages = pages
        self._context = context
        self._name = name
        # Never holds more than one result: the thread fetches only when a page was asked for.
        self._results: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        self._wanted = threading.Semaphore(0)
        self._stopping = False
        self._finished = False  # the consumer saw the end or an error, or closed
        self._thread: threading.Thread | None = None
        self._reported = False  # the thread handed over its last result (the end or an error)
        self.fetched = 0  # pages the source gave (handed out or waiting)

    # --- the consumer's side ------------------------------------------------------------------

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        if self._thread is None:
            self._start()
        kind, value = self._result()
        if kind == _PAGE:
            self._wanted.release()  # fetch the next page while the caller works on this one
            return value
        self._finished = True
        self._join()
        if kind == _END:
            raise StopIteration
        raise value

    def _result(self) -> tuple[str, Any]:
        while True:
            try:
                return self._results.get(timeout=1.0)
            except queue.Empty:
                pass
            if not self._thread.is_alive():
                try:  # it may have handed its result over just before it ended
                    return self._results.get_nowait()
                except queue.Empty:
                    return _ERROR, RuntimeError("the read-ahead thread ended without a page")

    def close(self) -> None:
        """Stop the thread and wait until it has ended (see the module docstring)."""
        self._finished = True
        self._stopping = True
        thread = self._thread
        if thread is None:
            return
        self._wanted.release()  # wakes a thread waiting to be asked for a page
        self._join()
        try:  # a page fetched ahead and never taken: let it go now
            self._results.get_nowait()
        except queue.Empty:
            pass

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "ReadAhead[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
        self._wanted.release()  # the first page
        self._thread.start()

    def _join(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # --- the thread's side --------------------------------------------------------------------

    def _work(self) -> None:
        try:
            with (self._context() if self._context is not None else nullcontext()):
                self._fetch_all()
        except BaseException as exc:  # noqa: BLE001 - the context failed: the consumer raises it
            if self._reported or self._stopping:
                logger.warning("the read-ahead thread's context failed", exc_info=True)
            else:
                self._report(_ERROR, exc)

    def _report(self, kind: str, value: Any) -> None:
        self._reported = kind != _PAGE
        self._results.put((kind, value))  # never waits: one result per page asked for

    def _fetch_all(self) -> None:
        pages: Iterator[T] | None = None
        try:
            while True:
                self._wanted.acquire()
                if self._stopping:
                    return
                try:
                    if pages is None:
                        pages = iter(self._pages)
                    page = next(pages)
                except StopIteration:
                    self._report(_END, None)
                    return
                except BaseException as exc:  # noqa: BLE001 - raised again by the consumer
                    self._report(_ERROR, exc)
                    return
                self.fetched += 1
                self._report(_PAGE, page)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - the source's own clean-up; the run's result stands
                    logger.warning("closing the source after read-ahead failed", exc_info=True)
