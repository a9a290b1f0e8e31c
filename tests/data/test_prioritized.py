import numpy as np
import pytest

from ddpg.data.frames import FrameReplayBuffer
from ddpg.data.nstep import NStepAggregator
from ddpg.data.prioritized import PrioritizedReplayBuffer, SumTree, annealed_beta, importance_weights
from ddpg.data.replay import ReplayBuffer
from ddpg.envs.wrappers import FrameStack
from ddpg.types import Transition
from tests.data.test_frame_replay import NoiseFrames


def filled(n: int, capacity: int = 16, alpha: float = 1.0, eps: float = 0.0) -> PrioritizedReplayBuffer:
    buffer = PrioritizedReplayBuffer(ReplayBuffer(capacity, (1,), 1), alpha=alpha, eps=eps)
    for i in range(n):
        buffer.add(np.full(1, i), np.zeros(1), float(i), np.zeros(1), False)
    return buffer


def test_sampling_frequencies_match_priorities():
    buffer = filled(5)
    priorities = np.array([1.0, 2.0, 0.5, 4.0, 2.5])
    buffer.update_priorities(np.arange(5), priorities)
    rng = np.random.default_rng(0)
    counts = np.zeros(5)
    for _ in range(400):
        counts += np.bincount(buffer.sample(250, rng).index, minlength=5)
    np.testing.assert_allclose(counts / counts.sum(), priorities / priorities.sum(), atol=0.005)


def test_priority_exponent_alpha_flattens_the_distribution():
    buffer = filled(2, alpha=0.5)
    buffer.update_priorities(np.arange(2), np.array([1.0, 16.0]))
    index = buffer.sample(100_000, np.random.default_rng(1)).index
    assert np.mean(index == 1) == pytest.approx(4 / 5, abs=0.005)  # 16^0.5 / (1 + 16^0.5)


def test_unfilled_slots_are_never_sampled():
    buffer = filled(3, capacity=10)  # the tree has 16 leaves; 13 of them empty
    index = buffer.sample(10_000, np.random.default_rng(2)).index
    assert set(index.tolist()) == {0, 1, 2}


def test_new_transitions_get_the_largest_priority_seen():
    buffer = filled(2)
    buffer.update_priorities(np.array([0, 1]), np.array([0.1, 7.0]))
    buffer.add(np.zeros(1), np.zeros(1), 0.0, np.zeros(1), False)
    assert buffer.tree.get(np.array([2]))[0] == 7.0


def test_priority_is_abs_td_error_plus_eps_to_the_alpha():
    buffer = filled(2, alpha=0.5, eps=0.01)
    buffer.update_priorities(np.array([0, 1]), np.array([-0.99, 3.99]))
    np.testing.assert_allclose(buffer.tree.get(np.array([0, 1])), [1.0, 2.0])


def test_sum_tree_root_stays_the_sum_of_leaves_after_repeated_updates():
    tree = SumTree(1000)
    rng = np.random.default_rng(3)
    for _ in range(200):
        index = rng.integers(0, 1000, 64)  # with repeats
        tree.set(index, rng.random(64))
    assert tree.total == pytest.approx(tree.get(np.arange(1000)).sum(), rel=1e-12)


def test_importance_weights_match_hand_computation():
    # N = 4, P = [0.1, 0.2, 0.3, 0.4], β = 0.5: w = (4 P)^-0.5 = [1.5811, 1.1180, 0.9129, 0.7906].
    w = importance_weights(np.array([0.1, 0.2, 0.3, 0.4]), 4, 0.5)
    np.testing.assert_allclose(w, [1.0, 0.70711, 0.57735, 0.5], rtol=1e-4)  # divided by the max, 1.5811


def test_sampled_weights_belong_to_the_sampled_transitions():
    buffer = filled(4)
    buffer.update_priorities(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    batch = buffer.sample(64, np.random.default_rng(4), beta=0.5)
    raw = (4 * np.array([0.1, 0.2, 0.3, 0.4])[batch.index]) ** -0.5
    np.testing.assert_allclose(batch.weight, raw / raw.max(), rtol=1e-5)
    np.testing.assert_array_equal(batch.obs[:, 0], batch.index)  # rows are the indexed transitions


def test_beta_anneals_from_beta0_to_one_over_the_run():
    assert annealed_beta(0.4, 0, 1000) == pytest.approx(0.4)
    assert annealed_beta(0.4, 500, 1000) == pytest.approx(0.7)
    assert annealed_beta(0.4, 2000, 1000) == 1.0


def test_arrays_round_trip_keeps_each_transitions_priority():
    buffer = filled(20, capacity=8)  # wrapped around: slots no longer in insertion order
    buffer.update_priorities(np.arange(8), np.arange(1.0, 9.0))
    restored = PrioritizedReplayBuffer(ReplayBuffer(8, (1,), 1), alpha=1.0, eps=0.0)
    restored.load_arrays(buffer.arrays())

    def priority_of_reward(b: PrioritizedReplayBuffer) -> dict[float, float]:
        slots = np.arange(8)
        return dict(zip(b.buffer.reward[slots].tolist(), b.tree.get(slots).tolist()))

    assert priority_of_reward(restored) == priority_of_reward(buffer)
    assert restored.tree.total == buffer.tree.total and restored.max_priority == buffer.max_priority


@pytest.mark.parametrize("n_step", [1, 3])
def test_prioritized_frame_buffer_only_draws_stored_transitions_after_early_evictions(n_step):
    # Very short episodes make the frame buffer drop its oldest transitions before the ring is full,
    # so stored slots are not 0 … size−1; the evicted ones must never be drawn. With n-step returns
    # frames are recorded (and transitions evicted) on steps that add no transition.
    env = FrameStack(NoiseFrames(p_end=0.7), 3)
    frames = FrameReplayBuffer(30, env.observation_space.shape, 1, frame_stack=3, n_step=n_step)
    buffer = PrioritizedReplayBuffer(frames, alpha=0.6)
    aggregator = NStepAggregator(n_step, 0.9)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    evicted_before_wrap, adds, first = False, 0, True
    for _ in range(200):
        action = rng.uniform(-1, 1, 1).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        if n_step == 1:
            buffer.add(obs, action, reward, next_obs, terminated, first=first)
            adds += 1
        else:
            frames.observe(obs, next_obs, first=first)
            for t in aggregator.push(Transition(obs, action, reward, next_obs, terminated, truncated)):
                buffer.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, t.discount, steps=t.steps)
                adds += 1
        obs = env.reset()[0] if terminated or truncated else next_obs
        first = terminated or truncated
        if not len(frames):
            continue
        stored = (frames.pos - frames.size + np.arange(frames.size)) % frames.capacity
        evicted_before_wrap |= adds <= frames.capacity and frames.size < adds
        sample = buffer.sample(16, rng)
        assert set(sample.index.tolist()) <= set(stored.tolist())
        buffer.update_priorities(sample.index, rng.random(16) * 5)
    assert evicted_before_wrap
    everything = frames.transitions()
    order = {slot: i for i, slot in enumerate(stored.tolist())}
    rows = [order[s] for s in sample.index.tolist()]
    np.testing.assert_array_equal(sample.next_obs, everything.next_obs[rows])
    shape = env.observation_space.shape
    restored = PrioritizedReplayBuffer(FrameReplayBuffer(30, shape, 1, frame_stack=3, n_step=n_step))
    restored.load_arrays(buffer.arrays())
    np.testing.assert_array_equal(restored.tree.nodes, buffer.tree.nodes)


def test_setting_one_leaf_builds_the_same_tree_as_setting_them_together():
    values = np.random.default_rng(0).random(13)
    together, one_by_one = SumTree(13), SumTree(13)
    together.set(np.arange(13), values)
    for i, v in enumerate(values):
        one_by_one.set_one(i, float(v))
    np.testing.assert_array_equal(together.nodes, one_by_one.nodes)
