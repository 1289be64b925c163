"""Member changes that arrive at once go out together (hub.group_commit): each caller returns
only once its own change was sent, an error reaches only the callers of its batch, and the
doors end up with exactly what a full compile of each site gives."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from hub.access_lists import AclPublisher
from hub.group_commit import GroupCommit
from hub.services.cards import CardIn, add_card
from hub.services.members import erase_member, set_blocked
from tests.support.network import CARD_KEY
from tests.support.reach import Doors, run_at_once, seed


class Gate:
    """A batch handler that holds its first batch until released, so that the next callers
    queue behind it meanwhile."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, requests: list[int]) -> list[int]:
        self.batches.append(list(requests))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if 13 in requests:
            raise ValueError("thirteen")
        return [r * 10 for r in requests]


def _submit_all(
    commit: GroupCommit[int, int], requests: list[int]
) -> tuple[dict[int, object], list[threading.Thread]]:
    """Submit each request from its own thread (started); its result or error, by request."""
    outcomes: dict[int, object] = {}

    def call(request: int) -> None:
        try:
            outcomes[request] = commit.submit(request)
        except ValueError as error:
            outcomes[request] = error

    threads = [threading.Thread(target=call, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    return outcomes, threads


def _queued(commit: GroupCommit[int, int], count: int) -> None:
    """Wait until ``count`` requests wait in the queue."""
    deadline = threading.Event()
    for _ in range(1000):
        if len(commit._queue) >= count:
            return
        deadline.wait(0.01)
    raise AssertionError(f"only {len(commit._queue)} of {count} queued")


def test_requests_waiting_behind_a_batch_go_together_each_with_its_own_result():
    gate = Gate()
    commit: GroupCommit[int, int] = GroupCommit(threading.RLock(), gate, max_batch=4)
    first, threads = _submit_all(commit, [1])
    assert gate.entered.wait(10)
    waiting, more = _submit_all(commit, [2, 3, 4, 5, 6, 7])
    _queued(commit, 6)  # all six behind the first batch
    gate.release.set()
    for thread in threads + more:
        thread.join(10)
    assert first == {1: 10}
    assert waiting == {r: r * 10 for r in range(2, 8)}
    # One batch at a time, at most four in each, every request in exactly one.
    assert gate.batches[0] == [1]
    assert [len(b) for b in gate.batches[1:]] == [4, 2]
    assert sorted(r for b in gate.batches for r in b) == list(range(1, 8))


def test_an_error_reaches_the_callers_of_its_batch_only():
    gate = Gate()
    commit: GroupCommit[int, int] = GroupCommit(threading.RLock(), gate, max_batch=2)
    first, threads = _submit_all(commit, [1])
    assert gate.entered.wait(10)
    waiting, more = _submit_all(commit, [12, 13, 14, 15])
    _queued(commit, 4)
    gate.release.set()
    for thread in threads + more:
        thread.join(10)
    batches = gate.batches[1:]
    failed = next(b for b in batches if 13 in b)
    for request, outcome in waiting.items():
        if request in failed:
            assert isinstance(outcome, ValueError), request
        else:
            assert outcome == request * 10, request
    assert first == {1: 10}


def test_member_changes_at_once_reach_the_doors_as_a_full_compile(tmp_path, network_api):
    """Cards, blocks and an erasure from many threads at once (the same member's changes in
    one batch, too): every site's versions follow one another and each door holds what a
    full compile gives, the erased member's cards forgotten."""
    hub, api = network_api
    seed(hub, api)
    doors = Doors(tmp_path, hub)
    doors.follow()
    engine, publisher = hub.engine, hub.publisher
    members = ["anna", "ben", "cleo", "dora", "emil"]
    changes: list[Callable[[], object]] = []
    for round_ in range(3):
        for i, member in enumerate(members):
            uid = f"05{round_:02X}{i:02X}C3D4E5F6"
            card = CardIn(uid=uid)
            changes.append(functools.partial(add_card, engine, publisher, CARD_KEY, member, card))
            changes.append(
                functools.partial(set_blocked, engine, publisher, member, round_ % 2 == 0)
            )
    changes.append(lambda: erase_member(engine, publisher, "fritz"))
    run_at_once(changes)
    sent = doors.follow()
    for site, docs in sent.items():
        versions = [d.version for d in docs]
        assert versions == list(range(versions[0], versions[0] + len(versions))), site
    doors.assert_as_compiled("after the changes at once")


def test_two_hub_processes_changing_members_at_once_both_reach_the_doors(tmp_path, network_api):
    """Two hub processes (a publisher each, on one store) send member changes at once: each
    reads a site's newest version and records the next, so they race for version numbers.
    A change that lost the race is sent under the next number, not dropped with an error
    (the member's change is committed: the doors would never hear of a block)."""
    hub, api = network_api
    seed(hub, api)
    doors = Doors(tmp_path, hub)
    doors.follow()
    other = AclPublisher(hub.engine, hub.key, hub.client.publish, hub.client.publish_many)
    members = ["anna", "ben", "cleo", "dora", "emil"]
    start = threading.Barrier(2 * len(members) * 3)
    failures: list[BaseException] = []

    def run(publisher: AclPublisher, member: str, blocked: bool) -> None:
        start.wait()
        try:
            set_blocked(hub.engine, publisher, member, blocked)
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(publisher, member, round_ % 2 == 0))
        for round_ in range(3)
        for member in members
        for publisher in (hub.publisher, other)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    doors.follow()
    doors.assert_as_compiled("after two processes' changes at once")


def test_a_site_recompiled_after_another_process_published_it_takes_the_next_version(
    network_api,
):
    hub, api = network_api
    seed(hub, api)
    other = AclPublisher(hub.engine, hub.key, hub.client.publish, hub.client.publish_many)
    assert hub.publisher.current("a-dorf") is not None  # this process remembers the list
    set_blocked(hub.engine, other, "anna", True)  # the other process sends the next version
    newest = other.newest("a-dorf")
    set_blocked(hub.engine, None, "anna", False)
    sent = hub.publisher.publish_site("a-dorf")
    assert sent is not None and sent.version == newest + 1
