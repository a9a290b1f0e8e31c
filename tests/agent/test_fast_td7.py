"""TD7's fast update (fast/td7.py) against its reference `TD7Learner.update`: the same statistics,
priorities, weights and Adam state after several updates, for each of TD7's switches; either path
continuing the other; the choice of path; a compiled run that resumes exactly."""

import dataclasses
import json

import pytest
import torch

from ddpg import Config
from ddpg.agent.fast.choice import AUTO_COMPILE_MIN_UPDATES, choose_update
from ddpg.agent.fast.td7 import FastTD7Update
from ddpg.agent.fast.update import FastUpdate, unsupported_reason
from ddpg.agent.learner import TensorBatch
from ddpg.agent.sale import SaleActor, build_sale_networks
from ddpg.agent.td7 import TD7Learner
from tests.agent.test_fast import _slowed, assert_same_state, float64_batch
from tests.helpers import random_batch

OBS, ACT, B = 3, 2, 16


def make_learner(dtype: torch.dtype = torch.float32, obs: int = OBS, act: int = ACT, **kw) -> TD7Learner:
    """A small TD7 learner, its targets updated every 3 updates (hard) unless `kw` says otherwise."""
    torch.manual_seed(0)
    small = dict(hidden_sizes=[16, 16], zs_dim=8, encoder_hidden_sizes=[16, 16], target_update_every=3)
    rates = dict(gamma=0.9, tau=0.05, actor_lr=1e-2, critic_lr=1e-2, encoder_lr=1e-2)
    config = Config(algo="td7", **{**small, **rates, **kw})
    actor, critic, encoder = (m.to(dtype) for m in build_sale_networks((obs,), act, config))
    return TD7Learner(actor, critic, encoder, config.optimisation, config.algorithm)


def make_batch(seed: int, kind: str = "one_step") -> TensorBatch:
    """A random batch, its rewards large enough that LAP's loss is linear for some |δ|; `n_step` adds
    each transition's γ^k, `prioritized` importance weights."""
    batch = random_batch(seed, B, OBS, ACT, p_terminal=0.3)
    batch = dataclasses.replace(batch, reward=3 * batch.reward)
    gen = torch.Generator().manual_seed(seed)
    if kind == "n_step":
        return dataclasses.replace(batch, discount=0.9 ** torch.randint(1, 4, (B,), generator=gen).float())
    if kind == "prioritized":
        return dataclasses.replace(batch, weight=torch.rand(B, generator=gen) + 0.1)
    return batch


SMOOTHING = {"target_policy_noise": 1.0, "target_noise_clip": 1.5}  # both clamps come into play
SETTINGS = {
    "paper": {},  # SALE, LAP, value clipping, hard target updates, σ 0.2 smoothing, delay 2
    "polyak": {"target_update_every": 0},
    "no_value_clip": {"value_clip": False},
    "no_lap": {"lap": False},
    "no_sale": {"sale": False},
    "one_critic": {"twin_critics": False, **SMOOTHING},
    "decay_and_clipping": {"actor_weight_decay": 1e-3, "critic_weight_decay": 1e-2, "grad_clip_norm": 0.1},
}


def run_side_by_side(paths: list[str], options: dict, kind: str = "one_step", dtype=torch.float32) -> None:
    """One learner updated by the reference throughout, another by `paths[i]` ("reference" or "fast")
    at update i, both from the same global generator seed and batches: the same statistics and
    priorities at every update, and the same weights, Adam state, value range and update count."""
    reference, other = make_learner(dtype, **options), make_learner(dtype, **options)
    fast = FastTD7Update(other, compile=False)
    batches = [make_batch(i, kind) for i in range(len(paths))]
    if dtype == torch.float64:
        batches = [float64_batch(b) for b in batches]
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-10}
    torch.manual_seed(1)  # the smoothing noise comes from the global generator
    expected = [reference.update(b) for b in batches]
    want_rng = torch.get_rng_state()
    torch.manual_seed(1)
    got = [(other.update if path == "reference" else fast)(b) for path, b in zip(paths, batches)]
    assert torch.equal(torch.get_rng_state(), want_rng)  # the same draws from the global generator
    for step, (want, have) in enumerate(zip(expected, got)):
        assert want.keys() == have.keys()
        for key in want:
            torch.testing.assert_close(have[key], want[key], **tol, msg=f"{key} at update {step}")
    assert other.critic_updates == reference.critic_updates == len(paths)
    assert_same_state(reference, other, **tol)


def test_fast_update_returns_what_the_reference_does_and_moves_the_targets_when_it_does():
    learner = make_learner()
    fast = FastTD7Update(learner, compile=False)
    moved = [bool(fast(make_batch(i))["target_update"]) for i in range(7)]
    assert moved == [False, False, True, False, False, True, False]  # every 3 updates
    assert not torch.equal(*learner.value_range.bounds)  # refreshed at the target updates


@pytest.mark.parametrize("options", SETTINGS.values(), ids=SETTINGS.keys())
def test_fast_update_matches_the_reference_over_several_updates(options):
    # Seven updates: three actor steps, four critic-only ones, two target updates (hard or Polyak).
    run_side_by_side(["fast"] * 7, options)


@pytest.mark.parametrize("kind", ["n_step", "prioritized"])
@pytest.mark.parametrize("lap", [True, False], ids=["lap", "squared_error"])
def test_fast_update_matches_the_reference_on_n_step_and_weighted_batches(kind, lap):
    run_side_by_side(["fast"] * 5, {"lap": lap}, kind)


@pytest.mark.parametrize("options", [{}, {"target_update_every": 0, **SETTINGS["decay_and_clipping"]}])
def test_fast_update_equals_the_reference_in_float64(options):
    # In float64 the paths agree to rounding of 1e-16: Adam, clipping and weight decay are checked
    # exactly, not within float32's band.
    run_side_by_side(["fast"] * 5, options, dtype=torch.float64)


@pytest.mark.parametrize(
    "paths",
    [["reference"] * 3 + ["fast"] * 4, ["fast"] * 3 + ["reference"] * 4, ["fast", "reference"] * 3],
    ids=["reference_then_fast", "fast_then_reference", "alternating"],
)
def test_either_path_continues_the_other(paths):
    run_side_by_side(paths, {})


# The compiled tests share one configuration, so that torch.compile compiles its two graphs once per
# process: the shapes of the resume test's tiny Pendulum runs (3 observations, 1 action, batch 8).
TINY_TD7 = dict(algo="td7", zs_dim=8, encoder_hidden_sizes=[8], target_update_every=10)


def tiny_learner(seed: int = 0) -> TD7Learner:
    from tests.run.test_resume import TINY_STATE

    config = Config(**TINY_STATE, **TINY_TD7)
    torch.manual_seed(seed)
    actor, critic, encoder = build_sale_networks((3,), 1, config)
    return TD7Learner(actor, critic, encoder, config.optimisation, config.algorithm)


# Compiling TD7's two graphs cold takes minutes on a small CPU: the compiled tests are kept out of
# `make test`; `python bench/td3_update.py --td7` checks the compiled update against its reference
# before timing it (and `pytest -m slow` runs these).
@pytest.mark.slow
def test_compiled_fast_update_agrees_with_the_reference():
    # A first compiled update on other weights: a second FastTD7Update reuses its graphs, and must
    # still read its own learner's tensors.
    FastTD7Update(tiny_learner(seed=1), compile=True)(_pendulum(make_batch(0), 8))
    reference, learner = tiny_learner(), tiny_learner()
    fast = FastTD7Update(learner, compile=True)
    for step in range(12):  # both graphs, and a hard target update at the 10th
        batch = _pendulum(make_batch(step), 8)
        torch.manual_seed(step)
        expected = reference.update(batch)
        torch.manual_seed(step)
        got = fast(batch)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4, msg=f"{key} at {step}")
    assert_same_state(reference, learner)
    assert fast.compile_seconds is not None


def _pendulum(batch: TensorBatch, size: int) -> TensorBatch:
    """The first `size` transitions, with Pendulum-v1's 3 observations and 1 action; contiguous, as the
    loop's batches are (a compiled graph is specialised to its inputs' strides)."""
    return TensorBatch(
        batch.obs[:size], batch.action[:size, :1].contiguous(), batch.reward[:size],
        batch.next_obs[:size], batch.terminated[:size],
    )  # fmt: skip


def test_td7_short_auto_run_keeps_the_reference_and_compile_false_too():
    learner = make_learner()
    assert unsupported_reason(learner) is None
    short = choose_update(learner, "auto", planned_updates=AUTO_COMPILE_MIN_UPDATES - 1, batch_size=B)
    assert short.path == "eager" and short.update == learner.update and "too few" in short.reason
    assert short.timings is None
    off = choose_update(learner, False, planned_updates=10**6, batch_size=B)
    assert off.path == "eager" and off.update == learner.update


@pytest.fixture
def no_compile(monkeypatch):
    """torch.compile as the identity: the choice of path is under test here, not the compiler, whose
    cold compile of TD7's graphs takes minutes (the slow tests above and bench/td3_update.py --td7)."""
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)


def test_td7_long_auto_run_compiles_the_fast_update_timed_against_the_reference(monkeypatch, no_compile):
    learner = tiny_learner()
    _slowed(monkeypatch, TD7Learner, "update", 0.05)  # the fast update (uncompiled here) times faster
    choice = choose_update(learner, "auto", planned_updates=AUTO_COMPILE_MIN_UPDATES, batch_size=8)
    assert choice.path == "compiled" and isinstance(choice.update, FastTD7Update)
    assert choice.timings.keys() == {"td7_compiled", "reference"} and choice.library == "linear"
    assert choice.reason.endswith("timed against the reference")


def test_td7_auto_runs_the_reference_when_its_compiled_update_times_slower(monkeypatch, no_compile):
    learner = tiny_learner()
    _slowed(monkeypatch, FastTD7Update, "__call__", 0.05)
    choice = choose_update(learner, "auto", planned_updates=10**6, batch_size=8)
    assert choice.path == "eager" and choice.update == learner.update
    assert "timed slower than the reference" in choice.reason
    forced = choose_update(learner, True, planned_updates=10**6, batch_size=8)
    assert forced.path == "compiled" and "compile: true asks for it" in forced.reason


def test_td7_networks_other_than_sales_keep_the_reference():
    class OtherActor(SaleActor):
        pass

    learner = make_learner()
    learner.actor.__class__ = OtherActor
    choice = choose_update(learner, True, planned_updates=10**6, batch_size=B)
    assert choice.path == "eager" and "OtherActor" in choice.reason
    with pytest.raises(ValueError, match="OtherActor"):
        FastTD7Update(learner)
    with pytest.raises(ValueError, match="FastTD7Update"):
        FastUpdate(make_learner())


@pytest.mark.slow  # compiles TD7's graphs, as above
def test_compiled_td7_run_resumes_exactly_and_says_which_update_it_ran(tmp_path):
    from tests.run.test_resume import TINY_STATE, assert_continues_like_a, resumed_at

    agent = resumed_at(Config(**TINY_STATE, **TINY_TD7, compile=True), 70, tmp_path)
    assert agent.learner.critic_updates >= 10 and not torch.equal(*agent.learner.value_range.bounds)
    assert_continues_like_a(agent, tmp_path)
    assert agent.update_choice.path == "compiled" and isinstance(agent.update_choice.update, FastTD7Update)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["update_path"] == "compiled" and set(summary["update_timings"]) == {
        "td7_compiled",
        "reference",
    }


def test_a_resumed_td7_run_keeps_the_update_its_first_session_chose_without_timing(monkeypatch):
    import ddpg.agent.fast.choice as fast_choice

    def no_timing(*args, **kwargs):
        raise AssertionError("a resumed run timed its candidates again")

    monkeypatch.setattr(fast_choice, "time_candidates", no_timing)
    learner = make_learner()
    kept = choose_update(learner, "auto", planned_updates=100, batch_size=B, kept=("reference", "why"))
    assert kept.path == "eager" and kept.update == learner.update and kept.reason == "why"
    # A long run resumed near its end: its fast update, uncompiled (the same arithmetic, no compile).
    fast = choose_update(learner, "auto", planned_updates=100, batch_size=B, kept=("linear", "why"))
    assert fast.path == "manual" and isinstance(fast.update, FastTD7Update) and not fast.update.compiled
    assert (fast.library, fast.reason) == ("linear", "why")
