"""The log-bucket histogram keeps every quantile within 1 % of the exact one."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import histogram

latencies = st.lists(st.floats(min_value=0.01, max_value=1e6, allow_nan=False), min_size=1,
                     max_size=400)


@given(latencies, st.floats(min_value=0, max_value=1))
@settings(max_examples=300, deadline=None)
def test_quantile_within_relative_accuracy_of_numpy(values, q):
    x = np.array(values)
    buckets, counts = np.unique(histogram.bucket_of(x), return_counts=True)
    exact = np.quantile(x, q)
    approx = histogram.quantile(buckets, counts, q)
    assert abs(approx - exact) <= histogram.RELATIVE_ACCURACY * exact * (1 + 1e-9)


@given(latencies)
def test_representative_within_accuracy_of_each_value(values):
    x = np.array(values)
    rep = histogram.bucket_value(histogram.bucket_of(x))
    assert np.all(np.abs(rep - x) <= histogram.RELATIVE_ACCURACY * x * (1 + 1e-9))


def test_unsorted_duplicate_buckets_are_merged():
    q = histogram.quantile(np.array([5, 1, 5, 1]), np.array([1, 1, 1, 1]), 0.5)
    assert q == histogram.bucket_value(1) + (histogram.bucket_value(5) - histogram.bucket_value(1)) * 0.5


def test_empty_histogram_is_nan():
    assert np.isnan(histogram.quantile(np.array([3]), np.array([0]), 0.5))
    assert np.isnan(histogram.mean(np.array([], dtype=int), np.array([])))


def test_tiny_latencies_are_clamped_not_lost():
    assert histogram.bucket_of(0.0) == histogram.bucket_of(histogram.MIN_MS)


@given(st.lists(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=30),
                min_size=1, max_size=8).map(lambda rows: [r + [0] * (30 - len(r)) for r in rows]),
       st.integers(min_value=-100, max_value=400), st.floats(min_value=0, max_value=1))
def test_quantile_rows_matches_quantile_row_by_row(rows, first, q):
    matrix = np.array(rows)
    got = histogram.quantile_rows(matrix, first, q)
    for row, value in zip(matrix, got):
        expected = histogram.quantile(np.arange(first, first + len(row)), row, q)
        assert (np.isnan(value) and np.isnan(expected)) or value == expected
