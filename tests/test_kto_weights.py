"""KTO weighs good and bad answers so that each side counts the same, however unevenly people label, and reads
them mixed."""
import pytest

from backend.train.kto import balancing_weights


@pytest.mark.parametrize("good,bad", [(6, 74), (74, 6), (1, 3), (20, 20)])
def test_the_rarer_side_is_weighted_up_to_the_range_the_kto_paper_asks_for(good, bad):
    rows = [{"label": True}] * good + [{"label": False}] * bad
    weights = balancing_weights(rows)
    desirable, undesirable = weights.get("desirable_weight", 1.0), weights.get("undesirable_weight", 1.0)
    assert min(desirable, undesirable) == 1.0  # only one side is reweighted (TRL: "but NOT BOTH")
    ratio = good * desirable / (bad * undesirable)
    assert 1 <= round(ratio, 2) <= 4 / 3  # Eq. (8) of the KTO paper, as TRL checks it
    assert (weights == {}) == (good == bad)


def test_kto_rows_are_mixed_so_batches_hold_good_and_bad_answers():
    from backend.train import mixed
    rows = [{"label": False, "n": i} for i in range(40)] + [{"label": True, "n": 40 + i} for i in range(40)]
    order = mixed(rows, seed=42)
    assert sorted(r["n"] for r in order) == list(range(80)) and order == mixed(rows, seed=42)
    batches = [order[i:i + 8] for i in range(0, 80, 8)]
    assert sum(len({r["label"] for r in batch}) == 2 for batch in batches) >= 8  # in order, none would be
