"""Kubernetes quantities read one way for placement, twins, sweeps and drift."""

from __future__ import annotations

from decimal import Decimal

import pytest

from regatta.rules.quantities import mebibytes, millicores, quantity, read


@pytest.mark.parametrize(("written", "value"), [
    ("250m", Decimal("0.25")), ("2", Decimal(2)), ("1.5", Decimal("1.5")), ("512Mi", Decimal(512 * 2**20)),
    ("1Gi", Decimal(2**30)), ("1k", Decimal(1000)), ("1e3", Decimal(1000)), ("1E-3", Decimal("0.001")),
    (".5", Decimal("0.5")), ("+2", Decimal(2)), (3, Decimal(3)), (0.5, Decimal("0.5")), ("2Ei", Decimal(2 * 2**60)),
])
def test_a_quantity_is_read_as_the_kubernetes_reference_writes_it(written, value):
    assert quantity(written) == value


def test_cpu_and_memory_round_up_as_the_scheduler_counts_a_request():
    assert (millicores("250m"), millicores("0.1"), millicores("1"), millicores("0.0011")) == (
        250, 100, 1000, 2)
    assert (mebibytes("512Mi"), mebibytes("1Gi"), mebibytes("1M"), mebibytes(None), millicores("")) == (512, 1024, 1, 0, 0)


@pytest.mark.parametrize("written", ["", "abc", "1Qi", "1 Gi", "--1", True])
def test_what_is_not_a_quantity_is_none_or_refused_saying_how_to_write_one(written):
    assert read(written) is None
    with pytest.raises(ValueError, match="like 250m, 2, 512Mi"):
        quantity(written)
