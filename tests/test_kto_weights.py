"""KTO weighs good and bad answers so that each side counts the same, however unevenly people label."""
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
