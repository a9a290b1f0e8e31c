import gymnasium as gym
import numpy as np
import pytest

from ddpg.data.frames import FrameReplayBuffer
from ddpg.data.nstep import NStepAggregator
from ddpg.data.replay import ReplayBuffer
from ddpg.envs.wrappers import FrameStack
from ddpg.types import Transition


class NoiseFrames(gym.Env):
    """Random (6, 5, C) uint8 frames; episodes terminate with probability p_end, truncate at max_len."""

    def __init__(self, channels=3, p_end=0.1, max_len=12, blank_start=False):
        self.observation_space = gym.spaces.Box(0, 255, (6, 5, channels), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.p_end, self.max_len, self.blank_start = p_end, max_len, blank_start
        self.t = 0

    def _frame(self):
        return self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return (np.zeros(self.observation_space.shape, np.uint8) if self.blank_start else self._frame()), {}

    def step(self, action):
        self.t += 1
        terminated = bool(self.np_random.random() < self.p_end)
        return self._frame(), float(self.t), terminated, self.t >= self.max_len and not terminated, {}


def fill(buffers, env, steps, seed=0):
    """Feed the same transitions to every buffer, as the collector does; returns the final frames of
    truncated episodes."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    truncated_finals, first = [], True
    for _ in range(steps):
        action = rng.uniform(-1, 1, 1).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for buffer in buffers:
            buffer.add(obs, action, reward, next_obs, terminated, first=first)
        if truncated:
            truncated_finals.append(next_obs)
        obs = env.reset()[0] if terminated or truncated else next_obs
        first = terminated or truncated
    return truncated_finals


def last_next_obs(buffer, stream=0):
    """The newest frame stack `stream` reached: where its open episode continues."""
    slots = (buffer.pos - buffer.size + np.arange(buffer.size)) % buffer.capacity
    return buffer.transitions().next_obs[buffer.stream[slots] == stream][-1]


def naive_and_frames(capacity, k=3, **env_kwargs):
    env = FrameStack(NoiseFrames(**env_kwargs), k)
    shape = env.observation_space.shape
    naive = ReplayBuffer(capacity, shape, 1, obs_dtype=np.uint8)
    frames = FrameReplayBuffer(capacity, shape, 1, frame_stack=k)
    return env, naive, frames


def assert_same_transitions(frames, naive):
    got, want = frames.transitions(), naive.transitions()
    n = len(got.reward)
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name)[-n:], err_msg=name)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_stacks_across_episode_boundaries_and_wraparound_equal_the_naive_layout(k):
    env, naive, frames = naive_and_frames(capacity=50, k=k)
    fill([naive, frames], env, steps=333)
    assert len(naive) == 50 and len(frames) >= 40  # short episodes cost frames: a few leave early
    assert_same_transitions(frames, naive)


def test_episodes_starting_on_a_blank_frame_are_rebuilt_exactly():
    # The first frame of every episode is identical to the last padded one; the content check must
    # still see a new episode or rebuild the same stacks.
    env, naive, frames = naive_and_frames(capacity=40, blank_start=True)
    fill([naive, frames], env, steps=200)
    assert_same_transitions(frames, naive)


def test_very_short_episodes_evict_oldest_first_and_stay_exact():
    env, naive, frames = naive_and_frames(capacity=30, p_end=0.9)
    fill([naive, frames], env, steps=200)
    assert 0 < len(frames) <= 30
    assert_same_transitions(frames, naive)


def test_truncation_keeps_the_true_final_frame():
    env, _naive, frames = naive_and_frames(capacity=100, p_end=0.0, max_len=7)
    finals = fill([frames], env, steps=21)
    stored = frames.transitions()
    ends = np.flatnonzero(np.arange(1, 22) % 7 == 0)
    assert len(finals) == 3
    for end, final in zip(ends, finals):
        np.testing.assert_array_equal(stored.next_obs[end], final)
    assert not stored.terminated[ends].any()


def test_sampled_batches_equal_the_stored_transitions():
    # Before the ring wraps both buffers keep transition i in slot i, so one seed picks the same ones.
    env, naive, frames = naive_and_frames(capacity=64)
    fill([naive, frames], env, steps=60)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    got, want = frames.sample(32, rng_a), naive.sample(32, rng_b)
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


def test_frames_stay_uint8_in_storage_and_in_batches():
    env, _, frames = naive_and_frames(capacity=16)
    fill([frames], env, steps=20)
    batch = frames.sample(4, np.random.default_rng(0))
    assert frames.frames.dtype == np.uint8 and batch.obs.dtype == np.uint8
    assert batch.obs.shape == (4, 9, 6, 5)


def test_bytes_per_transition_is_at_most_1_1_frames_for_64x64_rgb():
    capacity, frame_bytes = 2000, 64 * 64 * 3
    buffer = FrameReplayBuffer(capacity, (9, 64, 64), action_dim=2, frame_stack=3)
    assert buffer.nbytes / capacity <= 1.1 * frame_bytes


def test_observation_not_a_whole_number_of_frames_is_refused():
    with pytest.raises(ValueError, match="stack of 3 frames"):
        FrameReplayBuffer(10, (8, 6, 5), 1, frame_stack=3)


def test_saved_state_restores_the_buffer_exactly():
    env, _, frames = naive_and_frames(capacity=40)
    fill([frames], env, steps=90)
    restored = FrameReplayBuffer(40, env.observation_space.shape, 1, frame_stack=3)
    restored.load_arrays({k: v.copy() for k, v in frames.arrays().items()})
    a, b = frames.sample(16, np.random.default_rng(1)), restored.sample(16, np.random.default_rng(1))
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    obs = last_next_obs(frames)
    for buffer in (frames, restored):  # the open episode continues in both
        buffer.add(obs, np.zeros(1, np.float32), 0.0, obs, False)
    np.testing.assert_array_equal(frames.transitions().obs, restored.transitions().obs)


def test_a_checkpoint_written_before_streams_existed_still_loads():
    # Such checkpoints hold one previous observation and four counters, and no `has_previous`.
    env, _, frames = naive_and_frames(capacity=40)
    fill([frames], env, steps=90)
    saved = {k: v.copy() for k, v in frames.arrays().items()}
    saved["previous_next"] = last_next_obs(frames)  # as those checkpoints held it
    restored = FrameReplayBuffer(40, env.observation_space.shape, 1, frame_stack=3)
    restored.load_arrays(saved)
    obs = last_next_obs(frames)
    for buffer in (frames, restored):
        buffer.add(obs, np.zeros(1, np.float32), 0.0, obs, False)
    np.testing.assert_array_equal(frames.transitions().obs, restored.transitions().obs)
    assert len(saved["counters"]) == 4


def fill_nstep(naive, frames, env, steps, n, gamma=0.9, seed=0):
    """The trainer's n-step path: every step's frames to `frames.observe`, the aggregator's
    transitions (out of step order at episode ends) to both buffers."""
    rng = np.random.default_rng(seed)
    aggregator = NStepAggregator(n, gamma)
    obs, _ = env.reset(seed=seed)
    ends, first = {"terminated": 0, "truncated": 0}, True
    for _ in range(steps):
        action = rng.uniform(-1, 1, 1).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        frames.observe(obs, next_obs, first=first)
        for t in aggregator.push(Transition(obs, action, reward, next_obs, terminated, truncated)):
            naive.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, discount=t.discount)
            frames.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, t.discount, steps=t.steps)
        ends["terminated"] += terminated
        ends["truncated"] += truncated
        obs = env.reset()[0] if terminated or truncated else next_obs
        first = terminated or truncated
    return ends


@pytest.mark.parametrize(("k", "n"), [(3, 3), (2, 5), (4, 2)])
def test_n_step_stacks_equal_the_naive_layout_across_episodes_wraparound_and_both_endings(k, n):
    env = FrameStack(NoiseFrames(p_end=0.1, max_len=12), k)
    shape = env.observation_space.shape
    naive = ReplayBuffer(50, shape, 1, obs_dtype=np.uint8, store_discount=True)
    frames = FrameReplayBuffer(50, shape, 1, frame_stack=k, n_step=n)
    ends = fill_nstep(naive, frames, env, steps=333, n=n)
    assert ends["terminated"] > 0 and ends["truncated"] > 0 and len(frames) >= 40
    got, want = frames.transitions(), naive.transitions()
    m = len(got.reward)
    for name in ("obs", "action", "reward", "next_obs", "terminated", "discount"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name)[-m:], err_msg=name)
    # Full n-step transitions and shorter ones cut by an episode end are both covered.
    assert np.isclose(got.discount, 0.9**n).any() and (got.discount > 0.9**n + 1e-6).any()


def test_n_step_frame_buffer_with_very_short_episodes_evicts_and_stays_exact():
    env = FrameStack(NoiseFrames(p_end=0.7), 3)
    shape = env.observation_space.shape
    naive = ReplayBuffer(30, shape, 1, obs_dtype=np.uint8, store_discount=True)
    frames = FrameReplayBuffer(30, shape, 1, frame_stack=3, n_step=4)
    fill_nstep(naive, frames, env, steps=200, n=4)
    got, want = frames.transitions(), naive.transitions()
    assert 0 < len(got.reward) < 30
    for name in ("obs", "next_obs", "reward", "discount"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name)[-len(got.reward) :])


def test_n_step_frame_buffer_state_round_trips_with_steps_and_discounts():
    env = FrameStack(NoiseFrames(), 3)
    shape = env.observation_space.shape
    naive = ReplayBuffer(40, shape, 1, obs_dtype=np.uint8, store_discount=True)
    frames = FrameReplayBuffer(40, shape, 1, frame_stack=3, n_step=3)
    fill_nstep(naive, frames, env, steps=90, n=3)
    restored = FrameReplayBuffer(40, shape, 1, frame_stack=3, n_step=3)
    restored.load_arrays({k: v.copy() for k, v in frames.arrays().items()})
    a, b = frames.transitions(), restored.transitions()
    for name in ("obs", "next_obs", "discount"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def fill_streams(naive, frames, envs, steps, n=1, gamma=0.9, seed=0):
    """Step several envs in turn, as a vector env does, each the stream of its index; with n > 1 the
    trainer's per-env n-step windows. Every transition goes to both buffers in the same order."""
    rng = np.random.default_rng(seed)
    windows = [NStepAggregator(n, gamma) for _ in envs]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    first = [True] * len(envs)
    for _ in range(steps):
        for i, env in enumerate(envs):
            action = rng.uniform(-1, 1, 1).astype(np.float32)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            if n == 1:
                naive.add(obs[i], action, reward, next_obs, terminated)
                frames.add(obs[i], action, reward, next_obs, terminated, stream=i, first=first[i])
            else:
                frames.observe(obs[i], next_obs, stream=i, first=first[i])
                for t in windows[i].push(Transition(obs[i], action, reward, next_obs, terminated, truncated)):
                    naive.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, discount=t.discount)
                    frames.add(
                        t.obs,
                        t.action,
                        t.reward,
                        t.next_obs,
                        t.terminated,
                        t.discount,
                        steps=t.steps,
                        stream=i,
                    )
            obs[i] = env.reset()[0] if terminated or truncated else next_obs
            first[i] = terminated or truncated


def stream_buffers(capacity, k, n, p_ends, max_len=12):
    envs = [FrameStack(NoiseFrames(p_end=p, max_len=max_len), k) for p in p_ends]
    shape = envs[0].observation_space.shape
    naive = ReplayBuffer(capacity, shape, 1, obs_dtype=np.uint8, store_discount=n > 1)
    frames = FrameReplayBuffer(capacity, shape, 1, frame_stack=k, n_step=n, streams=len(envs))
    return envs, naive, frames


@pytest.mark.parametrize(("k", "n"), [(3, 1), (4, 1), (3, 3), (2, 5)])
def test_several_streams_interleaved_rebuild_each_envs_stacks_exactly(k, n):
    # Three envs stepped in turn: their frames interleave, each episode's stack is its own env's.
    envs, naive, frames = stream_buffers(60, k, n, p_ends=[0.1, 0.05, 0.2])
    fill_streams(naive, frames, envs, steps=150, n=n)
    got, want = frames.transitions(), naive.transitions()
    m = len(got.reward)
    assert len(naive) == 60 and m >= 40  # short episodes cost frames: a few leave early
    names = ("obs", "action", "reward", "next_obs", "terminated") + (("discount",) if n > 1 else ())
    for name in names:
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name)[-m:], err_msg=name)
    assert set(frames.stream[: len(frames)]) == {0, 1, 2}


@pytest.mark.parametrize("n", [1, 3])
def test_a_stream_of_very_short_episodes_evicts_the_oldest_of_all_streams_first(n):
    # Env 1 ends nearly every step and uses up its frame ring first: the transitions that leave early
    # are the oldest of all envs, so what remains is still the newest run of the naive buffer.
    envs, naive, frames = stream_buffers(40, 3, n, p_ends=[0.0, 0.9], max_len=1000)
    fill_streams(naive, frames, envs, steps=200, n=n)
    got, want = frames.transitions(), naive.transitions()
    m = len(got.reward)
    assert 0 < m < 40
    for name in ("obs", "next_obs", "reward"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name)[-m:], err_msg=name)


def test_several_streams_round_trip_through_saved_state_and_continue_alike():
    envs, naive, frames = stream_buffers(50, 3, 1, p_ends=[0.1, 0.3])
    fill_streams(naive, frames, envs, steps=70)
    restored = FrameReplayBuffer(50, envs[0].observation_space.shape, 1, frame_stack=3, streams=2)
    restored.load_arrays({k: v.copy() for k, v in frames.arrays().items()})
    for buffer in (frames, restored):  # both streams' open episodes continue in both buffers
        for s in (1, 0, 1):
            obs = last_next_obs(frames, s)
            buffer.add(obs, np.zeros(1, np.float32), 0.0, obs, False, stream=s)
    a, b = frames.transitions(), restored.transitions()
    for name in ("obs", "next_obs", "reward"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    with pytest.raises(ValueError, match="does not fit"):  # a buffer of one stream refuses two
        FrameReplayBuffer(50, envs[0].observation_space.shape, 1, frame_stack=3).load_arrays(frames.arrays())


@pytest.mark.parametrize("n_step", [1, 3])
def test_a_stream_out_of_range_is_refused(n_step):
    buffer = FrameReplayBuffer(10, (3, 6, 5), 1, frame_stack=1, n_step=n_step, streams=2)
    frame = np.zeros((3, 6, 5), np.uint8)
    discount = 0.9 if n_step > 1 else None
    for stream in (2, -1):
        with pytest.raises(ValueError, match=f"stream {stream}"):
            buffer.add(frame, np.zeros(1, np.float32), 0.0, frame, False, discount, stream=stream)
        with pytest.raises(ValueError, match=f"stream {stream}"):
            buffer.observe(frame, frame, stream=stream)
    assert len(buffer) == 0
