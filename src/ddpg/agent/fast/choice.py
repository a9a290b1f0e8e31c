"""Which update a run uses: the reference, or the fast path compiled or not, with which library doing
its products; timed on the run's shapes before a run commits to it, and kept across a resume."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ddpg.agent.fast.backward import MatMul, onednn_available
from ddpg.agent.fast.td7 import FastTD7Update
from ddpg.agent.fast.update import FastActor, FastUpdate, UpdateFn, unsupported_reason
from ddpg.agent.learner import Learner, TensorBatch
from ddpg.agent.td7 import TD7Learner
from ddpg.config import Config

# `compile: auto` compiles only a run with at least this many updates: compiling costs ~20-60 s on a
# small CPU (a few seconds from the inductor cache) and saves ~1 ms per update at [64, 64].
AUTO_COMPILE_MIN_UPDATES = 50_000


@dataclass(frozen=True)
class UpdateChoice:
    """Which update a run uses, and why (for the summary and the docs)."""

    update: UpdateFn
    # "compiled" (the fast update compiled: DDPG's and TD3's hand-written backward, TD7's torch.func),
    # "manual" (uncompiled), "eager" (reference)
    path: str
    reason: str
    act: Callable[[np.ndarray], np.ndarray]  # batch of observations → normalised actions
    # Seconds per update of each candidate timed before choosing (`time_candidates`), by name:
    # "reference", "hand_written" (F.linear), "hand_written_onednn", TD7's "td7_compiled"; None when
    # nothing was timed.
    timings: dict[str, float] | None = None

    @property
    def library(self) -> str:
        """What does the products: "reference" (autograd), "onednn" or "linear" (F.linear). A resumed
        run keeps it, since the libraries round differently."""
        if isinstance(self.update, FastTD7Update):
            return "linear"  # torch's own products, as the reference's
        if not isinstance(self.update, FastUpdate):
            return "reference"
        return "onednn" if self.update.matmul.onednn else "linear"


# The reference displaces the hand-written update, and F.linear displaces oneDNN, only when faster by
# more than these margins: the timing is there to catch a cliff (x90 once), not to chase the ~20 %
# that separates healthy paths (docs/BENCHMARKS.md). Timings of tiny updates on a loaded machine swing
# by more than that, and the choice must be the same every time a config runs on a machine, as the
# libraries round differently and a seed's logs are reproducible.
TIMING_NOISE = 1.0
LIBRARY_MARGIN = 1.0
TIMING_ROUNDS = 5
TIMING_UPDATES_PER_ROUND = 2


def choose_update(
    learner: Learner,
    compile: bool | str,
    planned_updates: int,
    batch_size: int | None = None,
    kept: tuple[str, str] | None = None,
) -> UpdateChoice:
    """The update function for a run: `compile` is the config's true/false/"auto".

    The fast update uses the hand-written backward (`backward.py`): compiled, it matched
    `torch.func.grad`'s compiled update at [64, 64] and ran 1.6-1.8x faster at [256, 256] and
    [400, 300] where oneDNN does the products; uncompiled, it still beats the reference without a
    compile's cost, so `auto` uses it for runs too short to pay for compiling (docs/BENCHMARKS.md,
    "hand-written backward").

    With `batch_size`, the candidates are first timed on batches of the run's shapes (`time_candidates`):
    the hand-written update takes whichever of oneDNN (for its large products) and F.linear times
    faster, and `auto` runs the reference when the hand-written update times slower than it. A CPU
    where one library has no fast kernel for a product (oneDNN's reference inner product on AVX-512
    took 90 % of the time once, docs/performance.md) then costs a few slow updates here rather than a
    slow run. `kept`, a resumed run's earlier (`library`, `reason`), skips the timing and keeps both:
    the libraries round differently."""
    reason = unsupported_reason(learner)
    if reason is not None:
        return UpdateChoice(learner.update, "eager", f"fast path not applicable: {reason}", learner.act)
    if isinstance(learner, TD7Learner):
        return _choose_td7_update(learner, compile, planned_updates, batch_size, kept)
    act = FastActor(learner)
    if compile is False:
        return UpdateChoice(learner.update, "eager", "compile: false", act)
    matmul = MatMul(onednn=onednn_available(learner.device))
    timings, timed = None, ""
    if kept is not None:
        library, reason = kept
        if library == "reference":
            return UpdateChoice(learner.update, "eager", reason, act)
        matmul = MatMul(onednn=library == "onednn")
        path = "manual" if compile == "auto" and planned_updates < AUTO_COMPILE_MIN_UPDATES else "compiled"
        return UpdateChoice(FastUpdate(learner, compile=path == "compiled", matmul=matmul), path, reason, act)
    if batch_size is not None and planned_updates > 0:
        candidates = _candidates(learner, batch_size)
        batch = _timing_batch(learner, batch_size)
        timings = time_candidates(learner, candidates, batch, _timing_rounds(planned_updates))
        judged, timed = _judge(timings, compile)
        if judged is None:
            return UpdateChoice(learner.update, "eager", timed, act, timings)
        matmul = judged
    if compile == "auto" and planned_updates < AUTO_COMPILE_MIN_UPDATES:
        update = FastUpdate(learner, compile=False, matmul=matmul)
        return UpdateChoice(
            update,
            "manual",
            f"{planned_updates} updates are too few to pay for compiling "
            f"(auto needs {AUTO_COMPILE_MIN_UPDATES}); {_products(update)}{timed}",
            act,
            timings,
        )
    update = FastUpdate(learner, compile=True, matmul=matmul)
    return UpdateChoice(update, "compiled", f"compile: {compile}; {_products(update)}{timed}", act, timings)


def _choose_td7_update(
    learner: TD7Learner,
    compile: bool | str,
    planned_updates: int,
    batch_size: int | None,
    kept: tuple[str, str] | None,
) -> UpdateChoice:
    """`choose_update` for TD7: its fast update (fast/td7.py) pays only compiled (uncompiled it timed
    slower than the reference, docs/BENCHMARKS.md), so `auto` compiles it for a long run and keeps
    the reference for a short one; the compiled update is timed against the reference before a run
    commits to it, by the rule DDPG's hand-written update is. `kept`: a resumed run keeps its library."""
    act = learner.act
    long_run = planned_updates >= AUTO_COMPILE_MIN_UPDATES
    if compile is False:
        return UpdateChoice(learner.update, "eager", "compile: false", act)
    if kept is not None:
        library, reason = kept
        if library == "reference":
            return UpdateChoice(learner.update, "eager", reason, act)
        # A resumed run near its end compiles no more than DDPG's does (the same arithmetic, uncompiled).
        compiled = compile is True or long_run
        path = "compiled" if compiled else "manual"
        return UpdateChoice(FastTD7Update(learner, compile=compiled), path, reason, act)
    if compile == "auto" and not long_run:
        reason = (
            f"{planned_updates} updates are too few to pay for compiling td7's fast update "
            f"(auto needs {AUTO_COMPILE_MIN_UPDATES}), which uncompiled is no faster than the reference"
        )
        return UpdateChoice(learner.update, "eager", reason, act)
    timings, note = None, ""
    if batch_size is not None and planned_updates > 0:
        candidates: dict[str, Callable[[Learner], UpdateFn]] = {
            "td7_compiled": lambda lrn: FastTD7Update(lrn, compile=True),  # type: ignore[arg-type]
            "reference": lambda lrn: lrn.update,
        }
        batch = _timing_batch(learner, batch_size)
        timings = time_candidates(learner, candidates, batch, _timing_rounds(planned_updates))
        if timings["td7_compiled"] <= timings["reference"] * (1 + TIMING_NOISE):
            note = "; timed against the reference"
        elif compile == "auto":
            reason = "td7's compiled fast update timed slower than the reference on this machine"
            return UpdateChoice(learner.update, "eager", reason, act, timings)
        else:
            note = "; timed slower than the reference but compile: true asks for it"
    update = FastTD7Update(learner, compile=True)
    reason = f"compile: {compile}; td7's fast update, gradients by torch.func{note}"
    return UpdateChoice(update, "compiled", reason, act, timings)


def _timing_rounds(planned_updates: int) -> int:
    """Fewer rounds for a short run: timing stays under ~4 % of the updates it plans."""
    return min(TIMING_ROUNDS, max(2, planned_updates // 200))


def _products(update: FastUpdate) -> str:
    if update.matmul.onednn:
        return f"hand-written backward, oneDNN for products of {update.matmul.min_size}+ in every dimension"
    return "hand-written backward"


def _candidates(learner: Learner, batch_size: int) -> dict[str, Callable[[Learner], UpdateFn]]:
    """The updates worth timing, in order of preference: oneDNN only where some product would use it."""
    candidates: dict[str, Callable[[Learner], UpdateFn]] = {}
    onednn = MatMul(onednn=True)
    if onednn_available(learner.device) and _uses(onednn, learner, batch_size):
        candidates["hand_written_onednn"] = lambda lrn: FastUpdate(lrn, compile=False, matmul=onednn)
    candidates["hand_written"] = lambda lrn: FastUpdate(lrn, compile=False, matmul=MatMul())
    candidates["reference"] = lambda lrn: lrn.update
    return candidates


def _uses(mm: MatMul, learner: Learner, batch_size: int) -> bool:
    # Every product of a layer (x·Wᵀ, g·W, gᵀ·x) has the batch and W's two sizes as its dimensions.
    weights = [p for p in [*learner.actor.parameters(), *learner.critic.parameters()] if p.dim() == 2]
    return batch_size >= mm.min_size and any(min(w.shape) >= mm.min_size for w in weights)


def _timing_batch(learner: Learner, batch_size: int) -> TensorBatch:
    """A batch of the run's shapes (its values do not change the products' speed), from its own
    generator: timing must not move the run's random streams."""
    params = list(learner.actor.parameters())
    obs_dim, action_dim = params[0].shape[1], params[-2].shape[0]
    gen = torch.Generator().manual_seed(0)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(learner.device)

    return TensorBatch(
        obs=draw(batch_size, obs_dim),
        action=draw(batch_size, action_dim).clamp(-1.0, 1.0),
        reward=draw(batch_size),
        next_obs=draw(batch_size, obs_dim),
        terminated=torch.zeros(batch_size, device=learner.device),
    )


def time_candidates(
    learner: Learner,
    candidates: dict[str, Callable[[Learner], UpdateFn]],
    batch: TensorBatch,
    rounds: int = TIMING_ROUNDS,
    per_round: int = TIMING_UPDATES_PER_ROUND,
) -> dict[str, float]:
    """Seconds per update of each candidate (a function of a learner giving its update), each on its
    own copy of `learner`, interleaved round by round; `learner` and the global generators are left as
    they were. A candidate whose fastest round is 3x the best after two rounds is not timed further:
    a cliff needs no precise figure.

    On the CPU the clock is this process's CPU time, and the figure a candidate's fastest round: on a
    2-core machine shared with two busy processes, wall-clock rounds of a few milliseconds lost whole
    time slices, and their medians flipped a 1.7x gap one time in ten."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    cuda = learner.device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time
    devices = [learner.device] if cuda else []
    with torch.random.fork_rng(devices=devices):  # TD3's smoothing noise draws from the global one
        updates = {name: make(copy.deepcopy(learner)) for name, make in candidates.items()}
        for update in updates.values():  # allocations, oneDNN's primitive cache, lazy optimiser state,
            for _ in range(learner.algorithm.policy_delay):  # and a compiled update's graphs, both
                update(batch)
        _sync(learner.device)
        for r in range(rounds):
            names = list(updates)
            for name in names[r % len(names) :] + names[: r % len(names)]:
                t0 = clock()
                for _ in range(per_round):
                    updates[name](batch)
                _sync(learner.device)
                samples[name].append((clock() - t0) / per_round)
            fastest = min(min(samples[n]) for n in updates)
            for name in names:
                if r >= 1 and min(samples[name]) > 3 * fastest:
                    del updates[name]
    return {name: min(times) for name, times in samples.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _judge(timings: dict[str, float], compile: bool | str) -> tuple[MatMul | None, str]:
    """The products' library for the hand-written update from `time_candidates`' figures (None: the
    reference, for `auto` only), and a note for the reason. No figures in the note: they are in
    `UpdateChoice.timings`, and a reason should read the same whenever the choice is the same."""
    reference, plain = timings["reference"], timings["hand_written"]
    onednn = timings.get("hand_written_onednn")
    # oneDNN (where its products are large enough) unless F.linear is clearly faster: a cliff.
    if onednn is not None and onednn <= plain * (1 + LIBRARY_MARGIN):
        matmul, fast, note = MatMul(onednn=True), onednn, "; timed against F.linear and the reference"
    elif onednn is not None:
        matmul, fast, note = MatMul(), plain, "; F.linear for every product, timed faster than oneDNN here"
    else:
        matmul, fast, note = MatMul(), plain, "; timed against the reference"
    if fast <= reference * (1 + TIMING_NOISE):
        return matmul, note
    if compile == "auto":
        return None, "the hand-written update timed slower than the reference on this machine"
    return matmul, f"{note}, slower than the reference but compile: true asks for it"


def planned_updates(config: Config, step: int, total: int) -> int:
    """How many updates a run from `step` to `total` environment steps will make."""
    first = max(step, config.exploration.learning_starts, config.optimisation.batch_size)
    return max(total - first, 0) // config.loop.train_freq * config.loop.gradient_steps
