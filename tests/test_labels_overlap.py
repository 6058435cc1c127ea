"""Overlap: each item to N labellers, never twice to one; items nearest to complete first; a skipped item goes to
someone else; progress per labeller and for the owner."""
import threading

import pytest

from backend.labels.overlap import Overlap


def test_each_item_goes_to_n_labellers_and_never_twice_to_one():
    queue = Overlap(["q1", "q2", "q3"], overlap=2)
    handed = {name: [] for name in ("bea", "sam", "kim")}
    for _ in range(3):
        for name in handed:
            item = queue.next_for(name)
            if item is not None:
                handed[name].append(item)
                queue.judged(item, name)
    for items in handed.values():
        assert len(items) == len(set(items))  # never the same item twice
    given = [item for items in handed.values() for item in items]
    assert sorted(given) == ["q1", "q1", "q2", "q2", "q3", "q3"]  # each exactly twice
    assert all(queue.complete(item) for item in ("q1", "q2", "q3"))
    assert queue.next_for("bea") is None
    progress = queue.progress()
    assert progress["complete"] == 3 and sum(progress["judged"].values()) == 6
    assert queue.progress("bea") == {"items": 3, "overlap": 2, "complete": 3, "judged": {"bea": len(handed["bea"])}}


def test_the_fullest_item_first_a_held_item_counts_and_a_skip_frees_it():
    queue = Overlap(["q1", "q2"], overlap=2)
    assert queue.next_for("bea") == "q1"
    assert queue.next_for("sam") == "q1"  # q1 already has one: finish it first
    assert queue.next_for("kim") == "q2"  # q1 is held by two: full
    queue.release("q1", "sam")  # sam skipped it
    assert queue.next_for("kim") == "q1" and queue.next_for("sam") == "q2"  # sam never sees q1 again
    queue.judged("q1", "bea")
    queue.undo("q1", "bea")  # q1 is bea's to judge again; q2 is held by kim and sam
    assert not queue.complete("q1") and queue.next_for("bea") is None
    with pytest.raises(ValueError):
        Overlap(["q1"], overlap=0)


def test_labellers_asking_at_once_get_no_item_more_than_n_times():
    queue = Overlap([f"q{i}" for i in range(50)], overlap=2)
    taken = []

    def work(name):
        while (item := queue.next_for(name)) is not None:
            taken.append((item, name))
            queue.judged(item, name)
    threads = [threading.Thread(target=work, args=(f"l{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 100 and len(set(taken)) == 100
    assert all(sum(item == f"q{i}" for item, _ in taken) == 2 for i in range(50))
