import dataclasses

import numpy as np
import pytest
import torch

from ddpg.data.prioritized import PrioritizedReplayBuffer
from ddpg.data.replay import InPlaceSampler, ReplayBuffer


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


@pytest.mark.parametrize("n_step", [1, 3])
def test_in_place_sampler_draws_what_sample_draws(n_step):
    # The training loop samples in place; a run must see the same transitions and leave the generator
    # where ReplayBuffer.sample leaves it, or seeded runs (and resumed ones) would change.
    buffer = ReplayBuffer(50, (2,), 1, store_discount=n_step > 1)
    for i in range(30):
        discount = 0.99 ** (i % 3 + 1) if n_step > 1 else None
        buffer.add(np.full(2, i), np.full(1, i / 100), float(i), np.full(2, i + 1), i % 7 == 0, discount)
    sampler = InPlaceSampler(buffer, 16)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(3):
        expected = buffer.sample(16, rng_a)
        batch, tensors = sampler.sample(rng_b)
        for field in dataclasses.fields(expected):
            want, got = getattr(expected, field.name), getattr(batch, field.name)
            assert (want is None) == (got is None), field.name
            if want is not None:
                np.testing.assert_array_equal(got, want)
                np.testing.assert_array_equal(
                    getattr(tensors, field.name).numpy(), want
                )  # what the update reads
    assert rng_a.bit_generator.state == rng_b.bit_generator.state


def test_a_sampled_batch_is_not_overwritten_by_later_samples():
    # The in-place sampler reuses its own arrays; batches from ReplayBuffer.sample are the user's to keep.
    buffer = ReplayBuffer(100, (2,), 1)
    fill(buffer, 60)
    rng = np.random.default_rng(0)
    kept = buffer.sample(32, rng)
    snapshot = {
        f.name: np.copy(getattr(kept, f.name))
        for f in dataclasses.fields(kept)
        if getattr(kept, f.name) is not None
    }
    sampler = InPlaceSampler(buffer, 32)
    first, _ = sampler.sample(rng)
    held = first.obs.copy()
    buffer.sample(32, rng)
    second, _ = sampler.sample(rng)
    for name, values in snapshot.items():
        np.testing.assert_array_equal(getattr(kept, name), values)
    assert second.obs is first.obs and not np.array_equal(second.obs, held)  # the in-place batch moves on


def test_in_place_sampling_only_for_uniform_replay_on_the_cpu():
    buffer = ReplayBuffer(10, (2,), 1)
    assert isinstance(InPlaceSampler.of(buffer, 4, torch.device("cpu")), InPlaceSampler)
    assert InPlaceSampler.of(buffer, 4, torch.device("cuda")) is None  # tensors there are copies
    assert (
        InPlaceSampler.of(PrioritizedReplayBuffer(buffer), 4, torch.device("cpu")) is None
    )  # weights, indices
    with pytest.raises(ValueError, match="empty"):
        InPlaceSampler(buffer, 4).sample(np.random.default_rng(0))
