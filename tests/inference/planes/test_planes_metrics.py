"""Metrics on a tiny hand-made label set with numbers worked out by hand."""

import pytest

from inference.planes.metrics import classification_report


def test_known_numbers():
    names = ["A", "B", "C"]
    # truth:  A A A B B C ; predicted: A A B B C C
    rep = classification_report([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], names)
    assert rep["n"] == 6
    assert rep["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert rep["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    a, b, c = (rep["per_class"][k] for k in names)
    assert (a["precision"], a["recall"], a["support"]) == (1.0, pytest.approx(0.6667, abs=1e-4), 3)
    assert a["f1"] == pytest.approx(0.8)
    assert (b["precision"], b["recall"], b["f1"]) == (0.5, 0.5, 0.5)
    assert (c["precision"], c["recall"]) == (0.5, 1.0)
    assert c["f1"] == pytest.approx(0.6667, abs=1e-4)
    assert rep["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3, abs=1e-4)


def test_absent_class_not_in_macro_f1_and_never_predicted_has_zero_precision():
    rep = classification_report([0, 0, 1], [0, 0, 0], ["A", "B", "C"])
    assert rep["per_class"]["C"]["support"] == 0
    assert rep["per_class"]["B"]["precision"] == 0.0
    assert rep["macro_f1"] == pytest.approx((0.8 + 0.0) / 2)
