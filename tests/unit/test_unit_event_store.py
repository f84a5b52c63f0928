"""The API's event memory stays bounded whatever clients do."""

from __future__ import annotations

from api.event_store import BACKLOG, PER_SOURCE, SUBSCRIBER_QUEUE, EventStore, Subscriber
from protocol.events import SourceEvent


def _event(source: str, n: int) -> SourceEvent:
    return SourceEvent(source_id=source, type="motion.start", time=f"t{n}")


async def test_a_client_that_never_reads_is_bounded_and_dropped():
    store = EventStore()
    stalled, reader = Subscriber(), Subscriber()
    store.subscribers |= {stalled, reader}
    received = []
    for n in range(10 * SUBSCRIBER_QUEUE):
        store.add(_event("cam", n))
        while not reader.queue.empty():
            received.append(reader.queue.get_nowait())
    assert stalled.queue.qsize() == SUBSCRIBER_QUEUE  # never more than one queue's worth
    assert stalled.overflowed.is_set() and stalled not in store.subscribers
    assert len(received) == 10 * SUBSCRIBER_QUEUE  # the reading client lost nothing
    assert reader in store.subscribers


def test_backlog_and_per_source_history_are_bounded():
    store = EventStore()
    for n in range(3 * BACKLOG):
        store.add(_event("a" if n % 2 else "b", n))
    assert len(store.backlog) == BACKLOG
    assert len(store.recent("a", 10_000)) == PER_SOURCE
    assert [s.event.time for s in store.recent("a", 3)] == [f"t{n}" for n in (3 * BACKLOG - 5, 3 * BACKLOG - 3,
                                                                             3 * BACKLOG - 1)]


def test_resume_after_an_id_and_after_an_api_restart():
    store = EventStore()
    for n in range(10):
        store.add(_event("cam", n))
    assert [s.id for s in store.since(7)] == [8, 9, 10]
    assert store.since(10) == []
    # An id from a previous API process (beyond ours): replay everything we have.
    assert [s.id for s in store.since(5000)] == list(range(1, 11))

