import numpy as np
import pytest

from ddpg.data.replay import ReplayBuffer


def fill(buffer: ReplayBuffer, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        buffer.add(np.full(2, i), np.full(1, i / 100), float(i), np.full(2, i + 1), i % 7 == 0)


def test_ring_wraps_around_and_overwrites_the_oldest():
    buffer = ReplayBuffer(5, (2,), 1)
    fill(buffer, 7)
    assert len(buffer) == 5
    assert sorted(buffer.reward.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]  # 0 and 1 evicted, first in first out
    assert buffer.pos == 2


def test_transitions_are_in_insertion_order_after_wrap():
    buffer = ReplayBuffer(5, (2,), 1)
    fill(buffer, 8)
    assert buffer.transitions().reward.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]


def test_saved_arrays_restore_the_buffer_exactly():
    buffer = ReplayBuffer(5, (2,), 1)
    fill(buffer, 8)
    restored = ReplayBuffer(5, (2,), 1)
    restored.load_arrays({k: v.copy() for k, v in buffer.arrays().items()})
    fill(buffer, 1, start=8)
    fill(restored, 1, start=8)
    a, b = buffer.sample(64, np.random.default_rng(3)), restored.sample(64, np.random.default_rng(3))
    np.testing.assert_array_equal(a.obs, b.obs)  # same indices, same transitions
    assert restored.transitions().reward.tolist() == buffer.transitions().reward.tolist()


def test_sample_returns_consistent_transitions_from_filled_slots_only():
    buffer = ReplayBuffer(100, (2,), 1)
    fill(buffer, 10)
    batch = buffer.sample(256, np.random.default_rng(0))
    assert batch.obs.shape == (256, 2) and batch.action.shape == (256, 1) and batch.reward.shape == (256,)
    assert set(batch.reward.tolist()) <= set(range(10))
    np.testing.assert_array_equal(batch.obs[:, 0], batch.reward)  # rows belong together
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.reward + 1)
    np.testing.assert_array_equal(batch.terminated, (batch.reward % 7 == 0).astype(np.float32))


def test_sampling_is_uniform_over_the_buffer():
    buffer = ReplayBuffer(10, (1,), 1)
    for i in range(10):
        buffer.add(np.zeros(1), np.zeros(1), float(i), np.zeros(1), False)
    counts = np.bincount(buffer.sample(100_000, np.random.default_rng(1)).reward.astype(int), minlength=10)
    assert counts.min() > 9_500 and counts.max() < 10_500


def test_sampling_an_empty_buffer_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, (1,), 1).sample(2, np.random.default_rng(0))


def test_observations_are_stored_as_float32():
    buffer = ReplayBuffer(4, (3,), 1)
    buffer.add(np.array([1, 2, 3], dtype=np.float64), np.zeros(1), 0.0, np.zeros(3), False)
    assert buffer.obs.dtype == np.float32
