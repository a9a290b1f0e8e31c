"""Replay for stacked pixel observations that stores each frame once, as uint8 (1.05 frames per
transition instead of 2k for k-frame stacks)."""

from __future__ import annotations

import numpy as np

from ddpg.data.nstep import NStepAggregator
from ddpg.data.replay import AddFn
from ddpg.types import Batch, Transition


class FrameReplayBuffer:
    """Replay for stacked pixel observations that stores each frame once, as uint8.

    Observations are channels-first stacks (k·C, H, W), oldest frame first. Each stream of
    observations (one per environment stepped together, `streams` of them) has its own frame ring, and
    within an episode its frames get consecutive numbers, so a transition needs only its stream, the
    number of its observation's newest frame and of its episode's first frame: the observation is
    frames n−k+1 … n and the next observation n−k+2 … n+1, each number raised to at least the
    episode's first (episode starts repeat their first frame). The next observation's newest frame is
    always stored, so a truncated episode keeps its true final frame. Whoever adds says where a
    stream's episodes start (`first`: the collector knows, the buffer does not guess).

    n-step returns (`n_step > 1`): the next observation is `steps` environment steps after the
    observation, and transitions arrive out of step order (several at an episode end), so frames and
    transitions come in separately. `observe(obs, next_obs, stream, first)` records every environment
    step's frames in order; `add(..., discount=γ^j, steps=j, stream=stream)` then stores a transition
    whose next observation is the stream's step observed last and whose observation is j steps before
    it (which is what that stream's `NStepAggregator` emits). Its next observation is rebuilt from
    frames n+j−k+1 … n+j, clamped at the episode start. `store` does both with the buffer's own
    windows, one per stream.

    Each frame ring is `frame_slack` larger than its share of `capacity`: episodes add one frame each
    at their start. When a stream's episodes are so short that its frames run out first, the oldest
    transitions of all streams leave early until that stream's oldest one is safe, so the buffer then
    holds fewer than `capacity` (always first in, first out).
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_dim: int,
        frame_stack: int,
        frame_slack: float = 0.05,
        n_step: int = 1,
        streams: int = 1,
        gamma: float = 0.99,
    ) -> None:
        stacked, height, width = obs_shape
        if frame_stack < 1 or stacked % frame_stack:
            raise ValueError(f"observation of {stacked} channels is not a stack of {frame_stack} frames")
        if streams < 1:
            raise ValueError(f"streams must be >= 1, got {streams}")
        self.capacity = capacity
        self.k = frame_stack
        self.channels = stacked // frame_stack
        self.n_step = n_step
        self.streams = streams
        share = -(-capacity // streams)
        # Frames of the n−1 steps not yet stored as transitions must survive too.
        slack = int(np.ceil(share * frame_slack)) + frame_stack + n_step
        self.frame_capacity = share + slack  # per stream; stream s's ring starts at s · frame_capacity
        self.frames = np.zeros((streams * self.frame_capacity, self.channels, height, width), dtype=np.uint8)
        self.stream = np.zeros(capacity, dtype=np.int64)  # which stream each transition came from
        self.newest = np.zeros(capacity, dtype=np.int64)  # number of the observation's newest frame
        self.first = np.zeros(capacity, dtype=np.int64)  # number of the episode's first frame
        self.action = np.zeros((capacity, action_dim), dtype=np.float32)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        # n-step only: steps from observation to next observation, and γ^steps.
        self.steps = np.ones(capacity, dtype=np.int64) if n_step > 1 else None
        self.discount = np.zeros(capacity, dtype=np.float32) if n_step > 1 else None
        self.pos = 0  # where the next transition goes
        self.size = 0
        # Per stream: frame numbers are 0, 1, 2, …; frame n lives at n % frame_capacity of its ring.
        self.frames_written = np.zeros(streams, dtype=np.int64)
        self._episode_first = np.zeros(streams, dtype=np.int64)
        self.windows = [NStepAggregator(n_step, gamma) for _ in range(streams)] if n_step > 1 else []
        self._links()

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        """Bytes of all the arrays this buffer allocated."""
        names = dict.fromkeys((*self._fields(), "stream", "_later"))  # with one stream, not in _fields
        return sum(getattr(self, name).nbytes for name in names)

    def _links(self) -> None:
        """Each stream's oldest stored transition, and for each transition its stream's next one (−1:
        none), rebuilt from `stream`: a stream whose frames run out must find its oldest in O(1)."""
        self._head = np.full(self.streams, -1, dtype=np.int64)
        self._last = np.full(self.streams, -1, dtype=np.int64)
        self._later = np.full(self.capacity, -1, dtype=np.int64)
        stored = (self.pos - self.size + np.arange(self.size)) % self.capacity
        for s in range(self.streams):
            slots = stored[self.stream[stored] == s]
            if len(slots):
                self._head[s], self._last[s] = slots[0], slots[-1]
                self._later[slots[:-1]] = slots[1:]

    def _split(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs).reshape(self.k, self.channels, *self.frames.shape[2:])

    def _oldest_needed(self, i: int) -> int:
        return max(int(self.newest[i]) - self.k + 1, int(self.first[i]))

    def _evict_oldest(self) -> None:
        i = (self.pos - self.size) % self.capacity
        s = self.stream[i]
        self._head[s] = self._later[i]
        if self._head[s] < 0:
            self._last[s] = -1
        self.size -= 1

    def _write_frame(self, frame: np.ndarray, stream: int) -> int:
        number = int(self.frames_written[stream])
        overwritten = number - self.frame_capacity
        # Transitions in insertion order need non-decreasing frame numbers within a stream: evict from
        # the oldest of all streams until this stream's oldest no longer needs the frame overwritten.
        while self._head[stream] >= 0 and self._oldest_needed(self._head[stream]) <= overwritten:
            self._evict_oldest()
        self.frames[stream * self.frame_capacity + number % self.frame_capacity] = frame
        self.frames_written[stream] += 1
        return number

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        discount: float | None = None,
        steps: int = 1,
        stream: int = 0,
        first: bool = False,
    ) -> None:
        """Store one transition. With n_step = 1 its frames too (`first`: `obs` begins an episode);
        with n_step > 1 its frames were recorded by `observe`."""
        self._check_stream(stream)
        if self.steps is None:
            if discount is not None:
                raise ValueError("give a discount only to a buffer made with n_step > 1")
            self._store(stream, self.observe(obs, next_obs, stream, first), action, reward, terminated)
            return
        if discount is None:
            raise ValueError("an n-step buffer needs each transition's discount and steps")
        # The frames were recorded by observe(): next_obs is the stream's step observed last.
        newest = int(self.frames_written[stream]) - 1 - steps
        if not 1 <= steps <= self.n_step or newest < self._episode_first[stream]:
            raise ValueError(f"a transition {steps} steps long does not fit the observed episode")
        self._store(stream, newest, action, reward, terminated)
        assert self.discount is not None  # made with n_step > 1, like `steps`
        self.steps[self.pos - 1] = steps
        self.discount[self.pos - 1] = discount

    def store(self, transition: Transition, stream: int = 0, add: AddFn | None = None) -> None:
        add = add or self.add  # a prioritized wrapper passes its own, to give each new slot a priority
        t = transition
        if not self.windows:
            add(t.obs, t.action, t.reward, t.next_obs, t.terminated, stream=stream, first=t.first)
            return
        self.observe(t.obs, t.next_obs, stream, t.first)
        for n in self.windows[stream].push(t):
            add(n.obs, n.action, n.reward, n.next_obs, n.terminated, n.discount, steps=n.steps, stream=stream)

    def restart(self, stream: int) -> None:
        if self.windows:
            self.windows[stream].clear()

    def update_priorities(self, index: np.ndarray, td_abs: np.ndarray, target_update: bool = False) -> None:
        """Uniform replay has no priorities."""

    def observe(self, obs: np.ndarray, next_obs: np.ndarray, stream: int = 0, first: bool = False) -> int:
        """Record one environment step's frames; returns the number of `obs`'s newest frame. A stream
        that never saw a step starts an episode whatever `first` says."""
        self._check_stream(stream)
        if first or self.frames_written[stream] == 0:
            frames = self._split(obs)
            # A leading run of equal frames (the repeated first frame) is stored once.
            skip = 0
            while skip + 1 < self.k and np.array_equal(frames[skip + 1], frames[0]):
                skip += 1
            self._episode_first[stream] = self.frames_written[stream]
            for frame in frames[skip:]:
                newest = self._write_frame(frame, stream)
        else:
            newest = int(self.frames_written[stream]) - 1
        self._write_frame(self._split(next_obs)[-1], stream)
        return newest

    def _check_stream(self, stream: int) -> None:
        if not 0 <= stream < self.streams:
            raise ValueError(f"stream {stream} is not one of this buffer's {self.streams}")

    def _store(self, stream: int, newest: int, action: np.ndarray, reward: float, terminated: bool) -> None:
        if self.size == self.capacity:
            self._evict_oldest()
        i = self.pos
        self.stream[i] = stream
        self.newest[i] = newest
        self.first[i] = self._episode_first[stream]
        self.action[i] = action
        self.reward[i] = reward
        self.terminated[i] = terminated
        self._later[i] = -1
        if self._head[stream] < 0:
            self._head[stream] = i
        else:
            self._later[self._last[stream]] = i
        self._last[stream] = i
        self.pos = (i + 1) % self.capacity
        self.size += 1

    def _stacks(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Frame numbers n−k+1 … n+1 for every sampled transition at once, clamped to the episode start.
        shape = (len(idx), self.k * self.channels, *self.frames.shape[2:])
        first = self.first[idx, None]
        ring = self.stream[idx, None] * self.frame_capacity
        if self.steps is None:
            offsets = np.arange(-self.k + 1, 2)
            numbers = np.maximum(self.newest[idx, None] + offsets, first)
            frames = self.frames[ring + numbers % self.frame_capacity]  # (B, k+1, C, H, W)
            return frames[:, :-1].reshape(shape), frames[:, 1:].reshape(shape)
        offsets = np.arange(-self.k + 1, 1)
        now = self.newest[idx, None] + offsets
        later = now + self.steps[idx, None]
        obs = self.frames[ring + np.maximum(now, first) % self.frame_capacity].reshape(shape)
        return obs, self.frames[ring + np.maximum(later, first) % self.frame_capacity].reshape(shape)

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = (self.pos - self.size + rng.integers(0, self.size, size=batch_size)) % self.capacity
        return self.gather(idx)

    def gather(self, idx: np.ndarray) -> Batch:
        """The transitions in slots `idx`. Stored transitions occupy slots (pos − size … pos − 1) mod
        capacity, which are not 0 … size − 1 once frames were evicted early; a prioritized wrapper
        gives evicted slots priority 0, so it never draws them."""
        obs, next_obs = self._stacks(idx)
        return Batch(
            obs=obs,
            action=self.action[idx],
            reward=self.reward[idx],
            next_obs=next_obs,
            terminated=self.terminated[idx],
            discount=None if self.discount is None else self.discount[idx],
        )

    _STATE = ("frames", "newest", "first", "action", "reward", "terminated")

    def _fields(self) -> tuple[str, ...]:
        fields = self._STATE + (("steps", "discount") if self.steps is not None else ())
        return fields + (("stream",) if self.streams > 1 else ())  # one stream: all 0, not saved

    def arrays(self) -> dict[str, np.ndarray]:
        """The whole state, frame rings included, for checkpoints (restored exactly by `load_arrays`)."""
        state = {name: getattr(self, name) for name in self._fields()}
        per_stream = np.stack([self.frames_written, self._episode_first], axis=1).ravel()
        state["counters"] = np.concatenate([[self.pos, self.size], per_stream]).astype(np.int64)
        return state

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for name in self._fields():
            if arrays[name].shape != getattr(self, name).shape:
                raise ValueError(f"saved {name} of shape {arrays[name].shape} does not fit this buffer")
        counters = arrays["counters"]
        if counters.shape != (2 + 2 * self.streams,):
            raise ValueError(f"saved counters of shape {counters.shape} do not fit {self.streams} streams")
        for name in self._fields():
            getattr(self, name)[...] = arrays[name]
        self.pos, self.size = int(counters[0]), int(counters[1])
        self.frames_written[:], self._episode_first[:] = counters[2::2], counters[3::2]
        # Checkpoints written when the buffer recognised episodes by comparing observations also hold
        # each stream's previous next observation (`previous_next`, `has_previous`): not needed now.
        self._links()

    def transitions(self) -> Batch:
        """Every stored transition in insertion order, oldest first, with full stacks (for tests and
        inspection; this materialises 2k frames per transition)."""
        return self.gather(np.arange(self.pos - self.size, self.pos) % self.capacity)
