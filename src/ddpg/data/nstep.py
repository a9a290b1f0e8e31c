"""n-step returns: turn 1-step transitions into (s_t, a_t, Σ γ^i r_{t+i}, s_{t+k}, terminated, γ^k).

Sits between the collector and the replay buffer. The window never crosses an episode end: when an
episode ends, every transition still waiting is emitted with the rewards it has, k < n of them. At a
termination the target will not bootstrap (terminated = True); at a truncation it bootstraps from the
true final observation the collector kept, discounted by γ^k. The learner's one formula
y = r + discount · (1 − terminated) · Q'(s', μ'(s')) then covers 1-step and n-step alike.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ddpg.types import Transition


@dataclass(frozen=True)
class NStepTransition:
    obs: np.ndarray  # s_t
    action: np.ndarray  # a_t, normalised
    reward: float  # Σ_{i<k} γ^i r_{t+i}
    next_obs: np.ndarray  # s_{t+k}
    terminated: bool  # the episode terminated at t+k: no bootstrap
    discount: float  # γ^k, for the bootstrap from s_{t+k}
    steps: int = 1  # k, the environment steps from s_t to s_{t+k}


class NStepAggregator:
    """Holds the last n−1 transitions of the current episode; `push` returns those now complete."""

    def __init__(self, n: int, gamma: float) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.gamma = gamma
        self.window: deque[Transition] = deque()

    def push(self, transition: Transition) -> list[NStepTransition]:
        if transition.first:  # a new episode: whatever is left belongs to one abandoned mid-way (an
            self.window.clear()  # actor restarted by Ray); after an episode's end it is empty already
        self.window.append(transition)
        if transition.terminated or transition.truncated:
            done = [self._summarise(i) for i in range(len(self.window))]
            self.window.clear()
            return done
        if len(self.window) == self.n:
            done = [self._summarise(0)]
            self.window.popleft()
            return done
        return []

    def clear(self) -> None:
        """Forget an episode that was abandoned (a skipped non-finite step restarts it)."""
        self.window.clear()

    def _summarise(self, start: int) -> NStepTransition:
        """The transition from window[start] to the window's end."""
        steps = list(self.window)[start:]
        reward = sum(self.gamma**i * t.reward for i, t in enumerate(steps))
        last = steps[-1]
        return NStepTransition(
            steps[0].obs,
            steps[0].action,
            float(reward),
            last.next_obs,
            last.terminated,
            self.gamma ** len(steps),
            len(steps),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The pending window (the current episode's last < n steps), for checkpoints: without it a
        resumed run would lose those steps' n-step transitions."""
        steps = list(self.window)
        if not steps:
            return {"reward": np.zeros(0)}
        return {
            "obs": np.stack([np.asarray(t.obs) for t in steps]),
            "action": np.stack([np.asarray(t.action) for t in steps]),
            "reward": np.array([t.reward for t in steps], dtype=np.float64),
            "next_obs": np.stack([np.asarray(t.next_obs) for t in steps]),
        }

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore `arrays()`'s window; a window only ever holds steps of an episode still running."""
        count = len(arrays["reward"])
        if count >= self.n:
            raise ValueError(f"a window of {count} steps does not fit n = {self.n}")
        self.window = deque(
            Transition(
                arrays["obs"][i].copy(),
                arrays["action"][i].copy(),
                float(arrays["reward"][i]),
                arrays["next_obs"][i].copy(),
                False,
                False,
            )
            for i in range(count)
        )
