import copy
import dataclasses
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from ddpg import DDPG, Config
from ddpg.agent.fast.backward import (
    MatMul,
    actor_backward,
    actor_forward,
    critic_action_grad,
    critic_backward,
    critic_forward,
)
from ddpg.agent.fast.choice import (
    AUTO_COMPILE_MIN_UPDATES,
    TIMING_ROUNDS,
    TIMING_UPDATES_PER_ROUND,
    _timing_batch,
    choose_update,
    time_candidates,
)
from ddpg.agent.fast.update import FastActor, FastUpdate, unsupported_reason
from ddpg.agent.learner import Learner, TensorBatch
from ddpg.agent.networks import Actor, Critic, CriticEnsemble
from ddpg.config import ConfigError
from ddpg.run.loop import sample
from tests.helpers import random_batch

OBS, ACT, B = 3, 2, 32


def make_learner(
    action_layer=1,
    batch_norm=False,
    dropout=0.0,
    layer_norm=False,
    actor_sizes=(16, 16),
    critic_sizes=(16, 16),
    twin_critics=False,
    **kw,
) -> Learner:
    torch.manual_seed(0)
    norms = dict(batch_norm=batch_norm, dropout=dropout, layer_norm=layer_norm)
    actor = Actor(OBS, ACT, list(actor_sizes), **norms)

    def make_critic() -> Critic:
        return Critic(OBS, ACT, list(critic_sizes), action_layer=action_layer, **norms)

    critic = CriticEnsemble([make_critic(), make_critic()]) if twin_critics else make_critic()
    config = Config(gamma=0.9, tau=0.05, actor_lr=1e-2, critic_lr=1e-2, **kw)
    return Learner(actor, critic, config.optimisation, config.algorithm)


def make_batch(seed: int, kind: str = "one_step") -> TensorBatch:
    """A random batch; `n_step` adds each transition's γ^k, `prioritized` importance weights."""
    batch = random_batch(seed, B, OBS, ACT, p_terminal=0.3)
    gen = torch.Generator().manual_seed(seed)
    if kind == "n_step":
        return dataclasses.replace(batch, discount=0.9 ** torch.randint(1, 4, (B,), generator=gen).float())
    if kind == "prioritized":
        return dataclasses.replace(batch, weight=torch.rand(B, generator=gen) + 0.1)
    return batch


def assert_same_state(a: Learner, b: Learner, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    for (name, ma), mb in zip(a.modules().items(), b.modules().values()):
        for (pname, pa), pb in zip(ma.state_dict().items(), mb.state_dict().values()):
            torch.testing.assert_close(pa, pb, atol=atol, rtol=rtol, msg=f"{name}.{pname}")
    for opt_a, opt_b in zip(a.optimizers().values(), b.optimizers().values()):
        sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
        assert sa.keys() == sb.keys()
        for pid in sa:
            for key in ("step", "exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(sa[pid][key], sb[pid][key], atol=atol, rtol=rtol)


def state_distance(a: Learner, b: Learner) -> float:
    """The largest difference between two learners' weights and Adam moments, in float64."""
    pairs = [
        (ta, tb)
        for ma, mb in zip(a.modules().values(), b.modules().values())
        for ta, tb in zip(ma.state_dict().values(), mb.state_dict().values())
    ]
    for opt_a, opt_b in zip(a.optimizers().values(), b.optimizers().values()):
        sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
        pairs += [(sa[pid][key], sb[pid][key]) for pid in sa for key in ("exp_avg", "exp_avg_sq")]
    return max((ta.double() - tb.double()).abs().max().item() for ta, tb in pairs)


def float64_learner(**options) -> Learner:
    """`make_learner(**options)` in float64: the same initial weights, exact arithmetic to 1e-16."""
    learner = make_learner(**options)
    return Learner(learner.actor.double(), learner.critic.double(), learner.optimisation, learner.algorithm)


def float64_batch(batch: TensorBatch) -> TensorBatch:
    return TensorBatch(*(None if t is None else t.double() for t in dataclasses.astuple(batch)))


SETTINGS = {
    "plain": {},
    "action_with_state": {"action_layer": 0},
    "weight_decay_and_clipping": {
        "critic_weight_decay": 1e-2,
        "actor_weight_decay": 1e-3,
        "grad_clip_norm": 0.1,
    },
    "layer_norm": {"layer_norm": True},
    "layer_norm_action_with_state": {"layer_norm": True, "action_layer": 0},
}


# TD3's switches one at a time and together. Smoothing: σ 1 clipped at 1.5, so both the noise clip and
# the [−1, 1] clamp of the smoothed action come into play.
SMOOTHING = {"target_policy_noise": 1.0, "target_noise_clip": 1.5}
TD3 = {
    "twin_critics": {"twin_critics": True},
    "smoothing": SMOOTHING,
    "delay": {"policy_delay": 2},
    "td3": {"twin_critics": True, **SMOOTHING, "policy_delay": 2},
    "td3_layer_norm": {"twin_critics": True, **SMOOTHING, "policy_delay": 2, "layer_norm": True},
}


# Every product through oneDNN (min_size=1), so tiny networks exercise it too.
ONEDNN = pytest.param(
    MatMul(onednn=True, min_size=1),
    id="onednn",
    marks=pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN"),
)
NETWORKS = {
    "64x64": {"actor_sizes": (64, 64), "critic_sizes": (64, 64)},
    "asymmetric": {"actor_sizes": (24, 16, 8), "critic_sizes": (12, 20)},
    # A linear actor has no LayerNorm to show that the critic's layers have one.
    "linear_actor": {"actor_sizes": (), "critic_sizes": (12, 20)},
}


@pytest.mark.parametrize("matmul", [MatMul(onednn=False), ONEDNN], ids=["linear", "onednn"])
@pytest.mark.parametrize("options", SETTINGS.values(), ids=SETTINGS.keys())
@pytest.mark.parametrize("network", NETWORKS.values(), ids=NETWORKS.keys())
def test_hand_written_update_matches_the_reference_over_several_steps(network, options, matmul):
    reference, fast_learner = make_learner(**network, **options), make_learner(**network, **options)
    exact = float64_learner(**network, **options)
    fast = FastUpdate(fast_learner, compile=False, matmul=matmul)
    for step in range(5):
        batch = make_batch(step)
        expected, got = reference.update(batch), fast(batch)
        exact.update(float64_batch(batch))
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4, msg=key)
    # Adam moves a weight by about lr whatever the size of its gradient, so a weight whose gradient
    # nearly cancels (a sum over the batch, then weight decay, after clipping has shrunk it) turns
    # float32 rounding into a step error: the reference itself ends up to ~4e-5 from exact arithmetic
    # on the asymmetric networks with weight decay and clipping, and a library that sums in another
    # order (oneDNN against MKL) lands elsewhere in that band. A fast path no further from exact
    # arithmetic than the reference is within twice the reference's own error of it, whatever the CPU.
    # A wrong gradient or Adam step shows as ~lr per step instead, so that band must stay well below lr.
    reference_error = state_distance(reference, exact)
    assert reference_error < 1e-2 * reference.optimisation.critic_lr
    # LayerNorm's backward subtracts two means, so a near-zero gradient keeps ~1e-3 of float32 rounding,
    # and Adam turns it into a step of ~lr: 1e-5 here. Its exactness is tested in float64 below.
    floor = 1e-4 if options.get("layer_norm") else 1e-5
    assert_same_state(reference, fast_learner, atol=max(floor, 2 * reference_error))


@pytest.mark.parametrize("options", [*SETTINGS.values(), TD3["td3"]], ids=[*SETTINGS, "td3"])
@pytest.mark.parametrize("network", NETWORKS.values(), ids=NETWORKS.keys())
def test_hand_written_update_equals_the_reference_in_float64_over_several_steps(network, options):
    # The float32 test above allows for rounding; in float64 the two paths agree to rounding of 1e-16,
    # so clipping, weight decay and Adam's bias corrections are checked exactly. (oneDNN's products
    # are float32 only: float64 ones take F.linear whatever `MatMul` says.)
    reference, fast_learner = float64_learner(**network, **options), float64_learner(**network, **options)
    fast = FastUpdate(fast_learner, compile=False)
    for step in range(5):
        batch = float64_batch(make_batch(step))
        torch.manual_seed(step)  # TD3's smoothing noise, drawn alike by both paths
        expected = reference.update(batch)
        torch.manual_seed(step)
        got = fast(batch)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], atol=1e-12, rtol=0, msg=key)
    assert_same_state(reference, fast_learner, atol=1e-12, rtol=0)


@pytest.mark.parametrize("action_layer", [0, 1, 2])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_hand_written_gradients_equal_autograd_in_float64(action_layer, layer_norm):
    torch.manual_seed(0)
    actor = Actor(OBS, ACT, [24, 16, 8], layer_norm=layer_norm).double()
    critic = Critic(OBS, ACT, [20, 12, 8], action_layer=action_layer, layer_norm=layer_norm).double()
    for p in [*actor.parameters(), *critic.parameters()]:
        p.data += 0.1 * torch.randn_like(p)  # LayerNorm's gain and bias away from 1 and 0
    obs = torch.randn(B, OBS, dtype=torch.float64)
    mm = MatMul()

    action = torch.rand(B, ACT, dtype=torch.float64, requires_grad=True)
    grad_q = torch.randn(B, dtype=torch.float64)
    *expected, expected_action = torch.autograd.grad(
        critic(obs, action), [*critic.parameters(), action], grad_q
    )
    params = [p.detach() for p in critic.parameters()]
    q, trace = critic_forward(mm, params, action_layer, obs, action.detach())
    torch.testing.assert_close(q, critic(obs, action).detach(), atol=1e-12, rtol=0)
    for got, want in zip(critic_backward(mm, params, trace, grad_q), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    got_action = critic_action_grad(mm, params, action_layer, trace, grad_q, ACT)
    torch.testing.assert_close(got_action, expected_action, atol=1e-12, rtol=0)

    mu = actor(obs)
    grad_mu = torch.randn_like(mu)
    expected = torch.autograd.grad(mu, list(actor.parameters()), grad_mu)
    params = [p.detach() for p in actor.parameters()]
    mu_fast, trace = actor_forward(mm, params, obs)
    torch.testing.assert_close(mu_fast, mu.detach(), atol=1e-12, rtol=0)
    for got, want in zip(actor_backward(mm, params, trace, mu_fast, grad_mu), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", ["n_step", "prioritized"])
def test_hand_written_update_matches_the_reference_on_n_step_and_weighted_batches(kind):
    # n-step: each transition bootstraps with its own γ^k; prioritized: the loss is importance-weighted
    # and the batch's |TD error| is left for the priorities.
    reference, fast_learner = make_learner(), make_learner()
    fast = FastUpdate(fast_learner, compile=False)
    for step in range(4):
        batch = make_batch(step, kind)
        expected, got = reference.update(batch), fast(batch)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4, msg=key)
        torch.testing.assert_close(got["td_abs"], expected["td_abs"], atol=1e-5, rtol=1e-4)
    assert_same_state(reference, fast_learner)


def run_side_by_side(options: dict, update=None, kind: str = "one_step", steps: int = 5) -> None:
    """`steps` updates by the reference and by `update` (the fast path) from the same global generator
    seed; asserts the same statistics, |TD error|, update count and final state. Five steps with a
    delay of 2: the actor steps twice and is skipped three times."""
    reference, fast_learner = make_learner(**options), make_learner(**options)
    fast = (update or (lambda learner: FastUpdate(learner, compile=False)))(fast_learner)
    batches = [make_batch(step, kind) for step in range(steps)]
    runs = []
    for learner, fn in ((reference, reference.update), (fast_learner, fast)):
        torch.manual_seed(1)  # the smoothing noise comes from the global generator
        runs.append([(stats := fn(b), stats["td_abs"].clone(), learner.critic_updates) for b in batches])
        runs[-1].append(torch.get_rng_state())
    *expected, expected_rng = runs[0]
    *got, got_rng = runs[1]
    for step, ((want, want_td, want_n), (have, have_td, have_n)) in enumerate(zip(expected, got)):
        for key in want:
            torch.testing.assert_close(have[key], want[key], atol=1e-5, rtol=1e-4, msg=f"{key} at {step}")
        torch.testing.assert_close(have_td, want_td, atol=1e-5, rtol=1e-4, msg=f"td_abs at {step}")
        assert have_n == want_n == step + 1
    assert torch.equal(got_rng, expected_rng)  # the same number of draws from the global generator
    assert_same_state(reference, fast_learner, atol=1e-4 if options.get("layer_norm") else 1e-5)


@pytest.mark.parametrize("matmul", [MatMul(onednn=False), ONEDNN], ids=["linear", "onednn"])
@pytest.mark.parametrize("options", TD3.values(), ids=TD3.keys())
def test_hand_written_update_matches_the_reference_with_td3_switches(options, matmul):
    run_side_by_side(options, lambda learner: FastUpdate(learner, compile=False, matmul=matmul))


@pytest.mark.parametrize("kind", ["n_step", "prioritized"])
def test_hand_written_td3_update_matches_the_reference_on_n_step_and_weighted_batches(kind):
    run_side_by_side(TD3["td3"], kind=kind)


@pytest.mark.parametrize("options", [TD3["td3"], TD3["td3_layer_norm"]], ids=["td3", "td3_layer_norm"])
def test_compiled_td3_update_agrees_with_the_eager_reference(options):
    # Two graphs (with and without the actor's step), each compiled once: four updates use both twice.
    matmul = MatMul(onednn=torch.backends.mkldnn.is_available(), min_size=1)
    run_side_by_side(
        options, lambda learner: FastUpdate(learner, compile=True, matmul=matmul), "prioritized", 4
    )


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN")
def test_onednn_products_equal_torch_for_transposed_and_sliced_operands():
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(256, 401, generator=gen), torch.randn(300, 401, generator=gen)
    b, g = torch.randn(300, generator=gen), torch.randn(256, 300, generator=gen)
    mm = MatMul(onednn=True)
    products = {
        "forward x·Wᵀ + b": (mm(x, w, b), x @ w.T + b),
        "input gradient g·W[:, :400]": (mm(g, w[:, :400].t()), g @ w[:, :400]),
        "weight gradient gᵀ·x": (mm(g.t(), x.t()), g.T @ x),
    }
    for name, (got, expected) in products.items():
        torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-4, msg=name)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN")
@pytest.mark.parametrize("action_layer", [0, 1])
def test_every_operand_handed_to_onednn_is_dense(monkeypatch, action_layer):
    # oneDNN's fast kernels take row- or column-major operands only: W[:, :256].t() of the critic's
    # [256, 257] action layer went to its reference kernel, ~2000x slower (the InvertedPendulum cliff).
    import ddpg.agent.fast.backward as backward

    handed = []

    def recording(x, w, b):
        handed.append((tuple(x.shape), x.stride(), tuple(w.shape), w.stride()))
        return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")

    monkeypatch.setattr(backward, "_onednn_linear_eager", recording)
    sizes = {"actor_sizes": (130, 130), "critic_sizes": (130, 130), "action_layer": action_layer}
    learner = make_learner(**sizes, twin_critics=True)
    gen = torch.Generator().manual_seed(0)
    batch = TensorBatch(
        torch.randn(130, OBS, generator=gen),
        torch.rand(130, ACT, generator=gen) * 2 - 1,
        torch.randn(130, generator=gen),
        torch.randn(130, OBS, generator=gen),
        torch.zeros(130),
    )
    FastUpdate(learner, compile=False)(batch)
    assert len(handed) >= 9  # forward, input and weight gradients of the [130, 130] layers
    for x_shape, x_stride, w_shape, w_stride in handed:
        for shape, stride in ((x_shape, x_stride), (w_shape, w_stride)):
            assert stride in ((shape[1], 1), (1, shape[0])), (x_shape, x_stride, w_shape, w_stride)


def test_matmul_sends_a_strided_operand_to_blas_not_onednn(monkeypatch):
    import ddpg.agent.fast.backward as backward

    monkeypatch.setattr(backward, "_onednn_linear_eager", lambda x, w, b: pytest.fail("went to oneDNN"))
    g, w = torch.randn(256, 256), torch.randn(256, 257)
    torch.testing.assert_close(MatMul(onednn=True)(g, w[:, :256].t()), g @ w[:, :256])


# In a fresh interpreter: this process's other tests may have registered the op already.
IMPORT_AND_REGISTER = """
import importlib, pkgutil, torch
ops = lambda: set(torch._C._dispatch_get_all_op_names())
before = ops()
import ddpg
for module in pkgutil.walk_packages(ddpg.__path__, "ddpg."):
    if not module.name.endswith("__main__"):  # __main__ runs the command line
        importlib.import_module(module.name)
print(sorted(ops() - before))
from ddpg.agent.fast.backward import MatMul, onednn_linear_op
MatMul(onednn=True, opaque=True)
MatMul(onednn=True, opaque=True)
print(sorted(ops() - before), onednn_linear_op() is onednn_linear_op())
"""


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN")
def test_importing_ddpg_registers_no_torch_operator_until_the_onednn_product_is_first_used():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_REGISTER], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["[]", "['ddpg::onednn_linear'] True"]


def test_learning_rate_schedule_reuses_one_tensor_per_optimiser():
    learner = make_learner()
    fast = FastUpdate(learner, compile=False)
    first = fast._optimisers.lr(learner.actor_opt)
    learner.set_learning_rates(5e-3, 5e-3)
    assert fast._optimisers.lr(learner.actor_opt) is first and first.item() == pytest.approx(5e-3)


def test_fast_update_follows_learning_rate_changes():
    reference, fast_learner = make_learner(), make_learner()
    fast = FastUpdate(fast_learner, compile=False)
    for step in range(4):
        lr = 1e-2 / (step + 1)
        reference.set_learning_rates(lr, 2 * lr)
        fast_learner.set_learning_rates(lr, 2 * lr)
        reference.update(make_batch(step))
        fast(make_batch(step))
    assert_same_state(reference, fast_learner)


def test_compiled_update_agrees_with_the_eager_reference():
    reference, fast_learner = make_learner(), make_learner()
    # oneDNN where available: under torch.compile it runs as the opaque ddpg::onednn_linear op.
    matmul = MatMul(onednn=torch.backends.mkldnn.is_available(), min_size=1)
    fast = FastUpdate(fast_learner, compile=True, matmul=matmul)
    for step in range(3):
        expected, got = reference.update(make_batch(step)), fast(make_batch(step))
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4, msg=key)
    assert_same_state(reference, fast_learner)
    assert fast.compile_seconds is not None and fast.compile_seconds > 0


def test_compiled_updates_in_several_threads_run_one_at_a_time(monkeypatch):
    # torch keeps one process-wide count of the frames a fullgraph call ran compiled: two compiled calls
    # at once (a tune trial's seeds train in threads) made one raise "found no compiled frames". The
    # compiler is replaced by a probe that counts the calls in flight and yields the GIL inside each.
    import threading

    in_flight, most = [0], [0]

    def probe(fn, **kwargs):
        def call(*args):
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            time.sleep(0.002)
            try:
                return fn(*args)
            finally:
                in_flight[0] -= 1

        return call

    monkeypatch.setattr(torch, "compile", probe)
    updates = [FastUpdate(make_learner(twin_critics=True, algo="td3"), compile=True) for _ in range(2)]

    def train(update: FastUpdate) -> None:
        for step in range(10):
            update(make_batch(step))

    threads = [threading.Thread(target=train, args=(u,)) for u in updates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and all(u.learner.critic_updates == 10 for u in updates)


def test_training_continues_identically_after_save_and_load_of_fast_updates(tmp_path):
    config = Config(hidden_sizes=[16, 16], batch_size=16, learning_starts=50, eval_episodes=0, progress=False)
    agent = DDPG(config=config)
    agent.learn(60)  # fills the buffer and creates the optimiser state
    fast = FastUpdate(agent.learner, compile=False)
    batches = [make_batch(i) for i in range(3)]
    fast(_pendulum(batches[0]))
    agent.save(tmp_path / "ckpt")
    loaded = DDPG.load(tmp_path / "ckpt")
    assert_same_state(agent.learner, loaded.learner, atol=0)
    # Either path continues from the saved state: the fast one on the original, the reference on the copy.
    for b in batches[1:]:
        expected, got = loaded.learner.update(_pendulum(b)), fast(_pendulum(b))
        torch.testing.assert_close(got["critic_loss"], expected["critic_loss"], atol=1e-5, rtol=1e-4)
    assert_same_state(agent.learner, loaded.learner)


def _pendulum(batch: TensorBatch) -> TensorBatch:
    # Pendulum-v1: 3 observations, 1 action.
    return TensorBatch(batch.obs, batch.action[:, :1], batch.reward, batch.next_obs, batch.terminated)


def test_fast_update_steps_an_optimiser_state_loaded_after_it_ran():
    # FastUpdate keeps the optimisers' state tensors between calls; Optimizer.load_state_dict replaces
    # them, and the next update must step the loaded ones, as DDPG.load into a training agent needs.
    learner = make_learner()
    fast = FastUpdate(learner, compile=False)
    fast(make_batch(0))
    saved = copy.deepcopy({name: opt.state_dict() for name, opt in learner.optimizers().items()})
    weights = copy.deepcopy({name: m.state_dict() for name, m in learner.modules().items()})
    fast(make_batch(1))
    expected = {name: [p.clone() for p in m.parameters()] for name, m in learner.modules().items()}
    for name, opt in learner.optimizers().items():
        opt.load_state_dict(saved[name])
    for name, m in learner.modules().items():
        m.load_state_dict(weights[name])
    fast(make_batch(1))
    for opt in learner.optimizers().values():
        assert all(s["step"].item() == 2 for s in opt.state.values())
    for name, m in learner.modules().items():
        for p, want in zip(m.parameters(), expected[name], strict=True):
            torch.testing.assert_close(p, want, rtol=0, atol=0)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_fast_actor_acts_like_the_learner(layer_norm):
    learner = make_learner(layer_norm=layer_norm)
    FastUpdate(learner, compile=False)(make_batch(0))
    obs = np.random.default_rng(0).normal(size=(5, OBS)).astype(np.float32)
    np.testing.assert_allclose(FastActor(learner)(obs), learner.act(obs), atol=1e-6)


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("rows", [1, 5])
def test_fast_actor_acts_exactly_as_the_hand_written_forward_pass(layer_norm, rows):
    # Acting skips actor_forward's trace for plain layers; a seeded run's actions must not change by a bit.
    learner = make_learner(layer_norm=layer_norm)
    FastUpdate(learner, compile=False)(make_batch(0))
    obs = np.random.default_rng(1).normal(size=(rows, OBS)).astype(np.float32)
    params = [p.detach() for p in learner.actor.parameters()]
    with torch.no_grad():
        expected, _ = actor_forward(MatMul(), params, torch.from_numpy(obs))
    np.testing.assert_array_equal(FastActor(learner)(obs), expected.numpy())


def test_auto_mode_runs_the_hand_written_update_uncompiled_for_a_short_run():
    choice = choose_update(make_learner(), "auto", planned_updates=AUTO_COMPILE_MIN_UPDATES - 1)
    assert choice.path == "manual" and isinstance(choice.update, FastUpdate)
    assert not choice.update.compiled


def test_auto_mode_compiles_the_hand_written_update_for_a_long_run():
    choice = choose_update(make_learner(), "auto", planned_updates=AUTO_COMPILE_MIN_UPDATES)
    assert choice.path == "compiled" and isinstance(choice.update, FastUpdate)
    assert choice.update.compiled


def test_compile_false_runs_the_reference_update():
    learner = make_learner()
    choice = choose_update(learner, False, planned_updates=10**6)
    assert choice.path == "eager" and choice.update == learner.update


def test_critic_whose_action_never_enters_falls_back_to_the_reference():
    learner = make_learner(action_layer=2)  # two hidden layers: 0 and 1
    choice = choose_update(learner, True, planned_updates=10**6)
    assert choice.path == "eager" and "action" in choice.reason


def _layer_norm_eps(learner: Learner) -> Learner:
    learner.critic.hidden[0][1].eps = 1e-3
    return learner


def _layer_norm_in_the_critic_only(learner: Learner) -> Learner:
    torch.manual_seed(0)
    learner.critic = Critic(OBS, ACT, [16, 16], layer_norm=True)
    return learner


@pytest.mark.parametrize(
    ("options", "change"),
    [
        ({"batch_norm": True}, None),
        ({"dropout": 0.1}, None),
        ({"layer_norm": True}, _layer_norm_eps),
        ({}, _layer_norm_in_the_critic_only),
    ],
    ids=["batch_norm", "dropout", "layer_norm_eps", "layer_norm_in_one_network"],
)
def test_unsupported_networks_fall_back_to_the_reference_even_when_compile_is_forced(options, change):
    learner = make_learner(**options)
    if change is not None:
        learner = change(learner)
    choice = choose_update(learner, True, planned_updates=10**6)
    assert choice.path == "eager" and choice.update == learner.update
    assert unsupported_reason(learner) in choice.reason


def test_fast_update_refuses_an_unsupported_configuration():
    with pytest.raises(ValueError, match="batch norm"):
        FastUpdate(make_learner(batch_norm=True))


def test_short_training_run_reports_the_uncompiled_hand_written_path():
    config = Config(hidden_sizes=[8, 8], batch_size=8, learning_starts=20, eval_episodes=0, progress=False)
    summary = DDPG(config=config).learn(40)
    assert summary["update_path"] == "manual" and summary["compile_seconds"] is None
    assert set(summary["update_timings"]) == {"hand_written", "reference"}  # no product of 128+: no oneDNN
    assert summary["update_reason"].endswith("timed against the reference")


def test_timing_the_candidates_leaves_the_learner_and_the_global_generator_as_they_were():
    learner = make_learner(**TD3["td3"])  # TD3's smoothing noise draws from the global generator
    untouched = make_learner(**TD3["td3"])
    torch.manual_seed(3)
    rng = torch.get_rng_state()
    choice = choose_update(learner, "auto", planned_updates=100, batch_size=B)
    assert choice.path == "manual" and choice.timings.keys() == {"hand_written", "reference"}
    assert all(t > 0 for t in choice.timings.values())
    assert torch.equal(torch.get_rng_state(), rng)
    assert state_distance(learner, untouched) == 0 and learner.critic_updates == 0
    assert all(not opt.state for opt in learner.optimizers().values())
    # A run with no update to make has nothing to time.
    assert choose_update(learner, "auto", planned_updates=0, batch_size=B).timings is None


def _slowed(monkeypatch, owner, name: str, seconds: float) -> list[int]:
    """`owner.name` made `seconds` of CPU time slower per call (the candidates are timed in CPU time,
    which a sleep does not take); the list counts the calls."""
    real, calls = getattr(owner, name), []

    def slow(*args):
        calls.append(1)
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
        return real(*args)

    monkeypatch.setattr(owner, name, slow)
    return calls


def test_auto_runs_the_reference_when_the_hand_written_update_times_slower(monkeypatch):
    learner = make_learner()
    calls = _slowed(monkeypatch, FastUpdate, "__call__", 0.05)
    choice = choose_update(learner, "auto", planned_updates=10_000, batch_size=B)  # all 5 rounds
    assert choice.path == "eager" and choice.update == learner.update
    assert "timed slower than the reference" in choice.reason
    assert choice.timings["hand_written"] > 3 * choice.timings["reference"]
    # Dropped once 3x slower than the reference after a round (the first, unless the machine stalled
    # the reference's): a cliff costs a few updates, not all the rounds.
    assert len(calls) < 1 + TIMING_ROUNDS * TIMING_UPDATES_PER_ROUND
    # compile: true is the user's choice, timed slower or not; the reason says so.
    forced = choose_update(learner, True, planned_updates=10_000, batch_size=B)
    assert forced.path == "compiled" and "compile: true asks for it" in forced.reason


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN")
def test_hand_written_update_takes_f_linear_where_onednn_times_slower(monkeypatch):
    import ddpg.agent.fast.backward as backward

    learner = make_learner(actor_sizes=(128, 128), critic_sizes=(128, 128))
    _slowed(monkeypatch, backward, "_onednn_linear_eager", 0.01)
    choice = choose_update(learner, "auto", planned_updates=100, batch_size=128)
    assert choice.timings.keys() == {"hand_written_onednn", "hand_written", "reference"}
    assert choice.path == "manual" and not choice.update.matmul.onednn
    assert "timed faster than oneDNN" in choice.reason


def test_update_chosen_for_inverted_pendulum_is_not_slower_than_the_reference():
    # The cliff: on an AVX-512 CPU oneDNN ran one product of this update through its reference kernel
    # and the hand-written update took 90x the reference's time. Ratios in one process, interleaved.
    pytest.importorskip("mujoco")
    config = Config(hidden_sizes=[256, 256], batch_size=256, eval_episodes=0, progress=False)
    learner = DDPG("InvertedPendulum-v5", config).learner
    choice = choose_update(learner, "auto", planned_updates=10_000, batch_size=256)
    chosen = choice.update.matmul if isinstance(choice.update, FastUpdate) else None
    candidates = {
        "chosen": lambda lrn: lrn.update if chosen is None else FastUpdate(lrn, compile=False, matmul=chosen),
        "static_rule": lambda lrn: FastUpdate(lrn, compile=False),  # oneDNN for the 256-sized products
        "reference": lambda lrn: lrn.update,
    }
    timings = time_candidates(learner, candidates, _timing_batch(learner, 256))
    assert timings["chosen"] < 1.5 * timings["reference"], timings
    assert timings["static_rule"] < 2 * timings["reference"], timings


@pytest.mark.parametrize("value", ["auto", True, False])
def test_compile_field_accepts_auto_true_and_false(value):
    assert Config(compile=value).compile == value


@pytest.mark.parametrize("value", ["yes", 1])
def test_compile_field_rejects_other_values(value):
    with pytest.raises(ConfigError, match="compile"):
        Config(compile=value)


@pytest.mark.parametrize(
    "switch", [{"prioritized": True}, {"n_step": 3}, {"algo": "td3"}, {"algo": "td3", "prioritized": True}]
)
def test_prioritized_n_step_and_td3_runs_take_the_fast_update(switch):
    config = Config(hidden_sizes=[8, 8], batch_size=8, learning_starts=10, progress=False, **switch)
    agent = DDPG("Pendulum-v1", config)
    agent.learn(30)
    assert agent.update_choice.path == "manual"
    assert agent.learner.critic_updates == agent.updates  # the phase of TD3's delayed actor steps
    batch = TensorBatch.from_numpy(sample(agent), agent.learner.device)
    assert agent.update_choice.update(batch)["td_abs"].shape == (8,)  # what priorities are set from


def test_td3_run_on_the_fast_update_resumes_exactly_between_a_critic_only_and_a_full_update(tmp_path):
    from tests.run.test_resume import TINY_STATE, assert_continues_like_a, resumed_at

    # Stopped after an odd number of updates: the next one is critic-only, and the actor's steps keep
    # their phase (and the smoothing noise its generator state) across the resume.
    agent = resumed_at(Config(**TINY_STATE, algo="td3"), 70, tmp_path)
    assert agent.learner.critic_updates % 2 == 1
    assert_continues_like_a(agent, tmp_path)
    assert agent.update_choice.path == "manual"


def test_a_resumed_run_keeps_the_library_its_first_session_chose(tmp_path, monkeypatch):
    # The libraries round differently: a resumed run that timed again and took the other one would
    # no longer reproduce the uninterrupted run.
    import json

    import ddpg.agent.fast.choice as fast_choice

    config = Config(hidden_sizes=[16, 16], batch_size=16, learning_starts=50, total_steps=200, progress=False)
    config = config.replace(eval_episodes=0, video=False)
    DDPG(config=config).learn(100, run_dir=tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "checkpoints" / "latest" / "meta.json").read_text())
    chosen, reason = meta["training"]["update"]
    assert chosen in ("reference", "linear", "onednn")

    def no_timing(*args, **kwargs):
        raise AssertionError("a resumed run timed its candidates again")

    monkeypatch.setattr(fast_choice, "time_candidates", no_timing)
    with DDPG.resume(tmp_path / "run") as agent:
        agent.learn(run_dir=tmp_path / "run")
        assert (agent.update_choice.library, agent.update_choice.reason) == (chosen, reason)
