"""Policy checkpoints (TD7, Fujimoto et al. 2023): the policy shipped is the last one that survived an
assessment on whole training episodes, not whatever the latest update left.

The actor is held fixed while an assessment collects its episodes; the updates due for those steps
are deferred and run when it ends. It ends early, the policy abandoned, as soon as an episode returns
less than the best minimum so far; a policy whose every episode clears that bar becomes the checkpoint
policy, and its minimum the new bar. Once `late_updates` updates have run, assessments grow to
`late_episodes` episodes and the bar is relaxed once (docs/algorithms.md, "Policy checkpoints").

`PolicyCheckpointRule` is only the rule, fed episode returns and the update rounds falling due, so
that it can be tested on hand-made episode sequences; the loop wires it in and the agent keeps the
checkpoint policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ddpg.config import Config

Verdict = Literal["assess", "checkpoint", "abandon", "unassessed"]


@dataclass(frozen=True)
class Decision:
    """What to do after an episode: `verdict`, and the deferred update rounds to run now."""

    verdict: Verdict  # assess: keep assessing; checkpoint: copy the policy, then update; abandon: update
    rounds: int
    min_return: float = math.inf  # the lowest return of the assessment that ended


def relaxed(bound: float, weight: float) -> float:
    """`bound` lowered by the fraction 1 − `weight` of its size. TD7 multiplies by `weight`, which
    lowers a positive bound but raises a negative one (−200 × 0.9 = −180, a stricter bar); this lowers
    both, and equals TD7's on every positive bound."""
    return bound - (1.0 - weight) * abs(bound)


@dataclass
class PolicyCheckpointRule:
    """The assessment's bookkeeping. Before learning starts nothing is deferred; episodes of the
    actor are fed with `episode`, an episode begun before learning started with `unassessed`."""

    episodes: int = 1  # episodes per assessment, until late_updates
    late_episodes: int = 20
    late_updates: int = 750_000  # updates after which assessments grow and the bar is relaxed
    relax: float = 0.9
    updates_per_round: int = 1  # gradient_steps
    # The state, which a training checkpoint keeps.
    best_min_return: float = -math.inf  # the bar: the first assessment always passes
    min_return: float = math.inf  # the lowest return of the assessment in progress
    assessed: int = 0  # episodes of the assessment in progress
    deferred: int = 0  # update rounds due since it began
    per_assessment: int = 0  # episodes the assessment in progress needs (0: `episodes`)

    def __post_init__(self) -> None:
        self.per_assessment = self.per_assessment or self.episodes

    @classmethod
    def of(cls, config: Config) -> PolicyCheckpointRule | None:
        """The rule of `config`, or None when its policy checkpoints are off."""
        a = config.algorithm
        if not a.policy_checkpointing:
            return None
        return cls(
            a.checkpoint_episodes,
            a.checkpoint_episodes_late,
            a.checkpoint_late_updates,
            a.checkpoint_relax,
            config.loop.gradient_steps,
        )

    def defer(self, rounds: int) -> None:
        """Update rounds that fell due: they run when the assessment ends."""
        self.deferred += rounds

    def episode(self, ret: float, updates: int) -> Decision:
        """A training episode of the assessed policy ended with return `ret`; `updates` have run so far."""
        self.assessed += 1
        self.min_return = min(self.min_return, ret)
        if self.min_return < self.best_min_return:
            return self._end("abandon", updates)
        if self.assessed >= self.per_assessment:
            self.best_min_return = self.min_return
            return self._end("checkpoint", updates)
        return Decision("assess", 0)

    def unassessed(self, updates: int) -> Decision:
        """An episode partly collected before learning started ended: it says nothing about the actor,
        and the updates due so far run (the next episode is the first one assessed)."""
        return self._end("unassessed", updates)

    def _end(self, verdict: Verdict, updates: int) -> Decision:
        decision = Decision(verdict, self.deferred, self.min_return)
        rounds = self.deferred
        # As TD7: the switch to late assessments happens at the update that reaches late_updates, once.
        if updates <= self.late_updates < updates + rounds * self.updates_per_round:
            self.best_min_return = relaxed(self.best_min_return, self.relax)
            self.per_assessment = self.late_episodes
        self.assessed, self.deferred, self.min_return = 0, 0, math.inf
        return decision

    def to_json(self) -> dict[str, Any]:
        return {
            "best_min_return": None if math.isinf(self.best_min_return) else self.best_min_return,
            "min_return": None if math.isinf(self.min_return) else self.min_return,
            "assessed": self.assessed,
            "deferred": self.deferred,
            "per_assessment": self.per_assessment,
        }

    def load_json(self, state: dict[str, Any]) -> None:
        best, low = state["best_min_return"], state["min_return"]
        self.best_min_return = -math.inf if best is None else float(best)
        self.min_return = math.inf if low is None else float(low)
        self.assessed, self.deferred = int(state["assessed"]), int(state["deferred"])
        self.per_assessment = int(state["per_assessment"])
