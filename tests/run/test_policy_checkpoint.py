"""Policy checkpoints (TD7): the rule on hand-made episode sequences, the loop that defers updates to
the end of each assessment, exact resume, and the checkpoint policy that a loaded agent acts with."""

import json
import math

import numpy as np
import pytest
import torch

from ddpg import DDPG, Config
from ddpg.agent.learner import run_policy
from ddpg.cli import main
from ddpg.config import ConfigError, resolve
from ddpg.run import checkpoint as ckpt
from ddpg.run.loop import Loop
from ddpg.run.policy_checkpoint import PolicyCheckpointRule, relaxed
from tests.run.test_resume import ARGS, Killed, assert_same_logs

# 1. The rule ----------------------------------------------------------------------------------------


def feed(rule, returns, rounds_per_episode=50, updates=0):
    """Each episode's rounds fall due, then it ends; the verdicts, and the updates run after each."""
    out = []
    for ret in returns:
        rule.defer(rounds_per_episode)
        decision = rule.episode(ret, updates)
        updates += decision.rounds * rule.updates_per_round
        out.append((decision.verdict, decision.rounds))
    return out, updates


def test_the_first_assessment_passes_and_a_lower_episode_ends_the_next_early():
    rule = PolicyCheckpointRule(episodes=2, late_updates=10**9)
    verdicts, _ = feed(rule, [-100.0, -150.0, -120.0, -160.0, -90.0, -140.0, -200.0])
    assert verdicts == [
        ("assess", 0),
        ("checkpoint", 100),  # the first policy always passes; its minimum, -150, is the bar
        ("assess", 0),
        ("abandon", 100),  # -160 < -150: the policy is dropped on its second episode
        ("assess", 0),
        ("checkpoint", 100),  # -90, -140: the bar rises to -140
        ("abandon", 50),  # -200 < -140: dropped on its first episode, its updates run at once
    ]
    assert rule.best_min_return == -140.0 and rule.deferred == 0 and math.isinf(rule.min_return)


def test_an_episode_equal_to_the_bar_passes():
    rule = PolicyCheckpointRule(episodes=1, late_updates=10**9)
    verdicts, _ = feed(rule, [5.0, 5.0, 4.999])
    assert [v for v, _ in verdicts] == ["checkpoint", "checkpoint", "abandon"]


def test_assessments_grow_and_the_bar_relaxes_once_at_the_update_that_reaches_late_updates():
    rule = PolicyCheckpointRule(episodes=1, late_episodes=3, late_updates=150, relax=0.9)
    # Updates 0-50, 50-100, 100-150: the update numbered 150 is not among them yet.
    verdicts, updates = feed(rule, [100.0, 120.0, 130.0])
    assert [v for v, _ in verdicts] == ["checkpoint"] * 3 and updates == 150
    assert rule.per_assessment == 1 and rule.best_min_return == 130.0
    verdicts, updates = feed(rule, [140.0], updates=updates)  # its updates 150-200 cross it
    assert verdicts == [("checkpoint", 50)] and rule.per_assessment == 3
    assert rule.best_min_return == pytest.approx(126.0)  # 140 × 0.9, as TD7
    # Three episodes now; 127 clears the relaxed bar of 126, and nothing is relaxed again.
    verdicts, updates = feed(rule, [200.0, 127.0, 300.0], updates=updates)
    assert verdicts == [("assess", 0), ("assess", 0), ("checkpoint", 150)] and updates == 350
    assert rule.best_min_return == 127.0


def test_gradient_steps_count_towards_late_updates():
    rule = PolicyCheckpointRule(episodes=1, late_episodes=4, late_updates=100, updates_per_round=2)
    feed(rule, [1.0])  # 50 rounds: updates 0-100
    assert rule.per_assessment == 1
    feed(rule, [1.0], updates=100)
    assert rule.per_assessment == 4


def test_the_relaxation_lowers_a_negative_bar_too():
    assert relaxed(200.0, 0.9) == pytest.approx(180.0)  # TD7's 200 × 0.9
    assert relaxed(-200.0, 0.9) == pytest.approx(-220.0)  # where × 0.9 would raise it to -180
    assert relaxed(-math.inf, 0.9) == -math.inf
    rule = PolicyCheckpointRule(episodes=1, late_updates=0)
    feed(rule, [-200.0])
    assert rule.best_min_return == pytest.approx(-220.0)


def test_an_episode_begun_in_the_warm_up_is_not_assessed_but_runs_the_updates_due():
    rule = PolicyCheckpointRule(episodes=2, late_updates=10**9)
    rule.defer(7)
    decision = rule.unassessed(0)
    assert (decision.verdict, decision.rounds) == ("unassessed", 7)
    assert rule.assessed == 0 and rule.best_min_return == -math.inf


def test_the_rules_state_round_trips_through_json():
    rule = PolicyCheckpointRule(episodes=3, late_updates=10**9)
    feed(rule, [-1.0, -2.0, -3.0, -4.0])
    rule.defer(5)
    again = PolicyCheckpointRule(episodes=3, late_updates=10**9)
    again.load_json(json.loads(json.dumps(rule.to_json())))
    assert again == rule
    fresh = PolicyCheckpointRule()
    fresh.load_json(json.loads(json.dumps(PolicyCheckpointRule().to_json())))
    assert fresh == PolicyCheckpointRule()


# 2. The switch ---------------------------------------------------------------------------------------


def test_auto_is_on_for_td7_only_and_every_field_is_checked_by_name():
    assert not Config().algorithm.policy_checkpointing
    assert not Config(algo="td3").algorithm.policy_checkpointing
    assert Config(algo="td3", policy_checkpoints=True).algorithm.policy_checkpointing
    assert resolve(overrides=["policy_checkpoints=true"]).algorithm.policy_checkpointing
    for bad in (
        "policy_checkpoints=sometimes",
        "checkpoint_episodes=0",
        "checkpoint_episodes_late=0",
        "checkpoint_late_updates=-1",
        "checkpoint_relax=0",
        "checkpoint_relax=1.5",
    ):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            resolve(overrides=[bad])


def test_several_envs_are_refused_with_policy_checkpoints_in_one_line():
    with pytest.raises(ConfigError, match=r"^policy_checkpoints needs n_envs: 1") as e:
        Config(policy_checkpoints=True, n_envs=2, total_steps=100)
    assert "\n" not in str(e.value)
    assert Config(policy_checkpoints=False, n_envs=2, total_steps=100).environment.n_envs == 2


# 3. The loop -----------------------------------------------------------------------------------------

# Episodes of 40 steps; updates every 2nd step, 2 each; assessments of 1 episode, then of 3.
SMALL = dict(
    env_id="Pendulum-v1",
    hidden_sizes=[16, 16],
    batch_size=16,
    learning_starts=60,
    max_episode_steps=40,
    train_freq=2,
    gradient_steps=2,
    total_steps=640,
    eval_every=320,
    eval_episodes=1,
    log_every=10,
    compile=False,
    progress=False,
    video=False,
    tensorboard=False,
    checkpoint_late_updates=200,
    checkpoint_episodes_late=3,
)


def updates_by_step(config, monkeypatch):
    """The updates run by the end of each step, and each assessed episode's (step, verdict, actor)."""
    counts, judged = {}, []
    real_update, real_episode = Loop._update, PolicyCheckpointRule.episode

    def update(self, before, episodes):
        real_update(self, before, episodes)
        counts[self.state.step] = self.state.updates

    def episode(rule, ret, updates):
        decision = real_episode(rule, ret, updates)
        weights = torch.cat([p.detach().flatten() for p in agent.learner.actor.parameters()]).clone()
        judged.append((agent.step, decision.verdict, weights))
        return decision

    monkeypatch.setattr(Loop, "_update", update)
    monkeypatch.setattr(PolicyCheckpointRule, "episode", episode)
    agent = DDPG(config=config)
    agent.learn()
    monkeypatch.undo()
    return agent, counts, judged


def test_updates_wait_for_the_end_of_each_assessment_with_the_actor_held_fixed(monkeypatch):
    _, normal, _ = updates_by_step(Config(**SMALL), monkeypatch)
    agent, deferred, judged = updates_by_step(Config(**SMALL, policy_checkpoints=True), monkeypatch)
    verdicts = [v for _, v, _ in judged]
    assert "abandon" in verdicts and verdicts.count("checkpoint") >= 2 and "assess" in verdicts
    ends = [step for step, verdict, _ in judged if verdict != "assess"]
    ends.append(80)  # the episode of steps 40-80 began in the warm-up: not assessed, but it ends
    for step in range(1, SMALL["total_steps"] + 1):
        if step in ends:  # an assessment ended: every update due so far has run
            assert deferred[step] == normal[step], step
        else:  # none runs in between
            assert deferred[step] == deferred.get(step - 1, 0), step
    # Within an assessment (episodes judged "assess", then the one that ends it) the actor is fixed.
    start = None
    for _, verdict, weights in judged:
        start = weights if start is None else start
        assert torch.equal(weights, start)
        if verdict != "assess":
            start = None
    # The late assessments of 3 episodes began once 200 updates had run.
    assert agent.checkpoint_rule.per_assessment == 3
    first_late = next(i for i, (_, v, _) in enumerate(judged) if v == "assess")
    assert normal[judged[first_late][0]] > 200


# 4. Resume and the policy shipped -------------------------------------------------------------------

ON = ["policy_checkpoints=true", "checkpoint_late_updates=150", "checkpoint_episodes_late=3"]


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    run = tmp_path_factory.mktemp("policy_checkpoints") / "run"
    assert main([*ARGS, *ON, "--run-dir", str(run)]) == 0
    return run


def test_a_run_killed_inside_deferred_updates_resumes_to_the_same_logs(checkpointed, tmp_path, monkeypatch):
    real, calls = Loop._train_round, []

    def dies(self):
        calls.append(1)
        if len(calls) == 330:  # inside the update rounds of a late assessment (3 episodes of 50 steps)
            raise Killed
        real(self)

    monkeypatch.setattr(Loop, "_train_round", dies)
    run = tmp_path / "run"
    with pytest.raises(Killed):
        main([*ARGS, *ON, "--run-dir", str(run)])
    monkeypatch.setattr(Loop, "_train_round", real)
    assert main(["resume", str(run)]) == 0
    assert_same_logs(checkpointed, run)
    summaries = [json.loads((r / "summary.json").read_text()) for r in (checkpointed, run)]
    assert summaries[0]["policy_checkpoint"] == summaries[1]["policy_checkpoint"]
    tensors = [ckpt.read_checkpoint(r / "checkpoints" / "latest")[0] for r in (checkpointed, run)]
    names = [k for k in tensors[0] if k.startswith("policy_checkpoint.")]
    assert names and all(torch.equal(tensors[0][k], tensors[1][k]) for k in names)


def test_a_loaded_agent_acts_evaluates_and_keeps_best_with_the_checkpoint_policy(checkpointed, capsys):
    summary = json.loads((checkpointed / "summary.json").read_text())
    assert summary["shipped_policy"] == "checkpoint"
    taken = summary["policy_checkpoint"]
    assert taken["step"] < 600 and taken["updates"] < summary["updates"] and taken["min_return"] < 0
    with DDPG.load(checkpointed) as agent:
        assert agent.shipped_policy() is agent.checkpoint_policy and agent.checkpoint_taken == taken
        obs = np.random.default_rng(0).uniform(-1, 1, (32, 3)).astype(np.float32)
        shipped = run_policy(agent.checkpoint_policy, obs, agent.learner.device)
        current = run_policy(agent.learner.actor, obs, agent.learner.device)
        assert not np.allclose(shipped, current)  # the actor trained on after the checkpoint
        acts = np.stack([agent.act(o) for o in obs[:4]])
        np.testing.assert_allclose(acts, agent.scale.to_env(shipped[:4]), rtol=1e-6)
    # `ddpg evaluate RUN` reproduces the final evaluation, which the checkpoint policy made.
    capsys.readouterr()
    assert main(["evaluate", str(checkpointed), "--episodes", "1"]) == 0
    assert f"{summary['final_eval_mean_return']:.2f}" in capsys.readouterr().out
    with DDPG.load(checkpointed, checkpoint="best") as best:
        assert best.checkpoint_policy is not None
        assert best.evaluate(1).mean_return == pytest.approx(summary["best_eval_mean_return"])


def test_without_policy_checkpoints_the_current_policy_is_shipped(reference):
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["shipped_policy"] == "current" and summary["policy_checkpoint"] is None
    with DDPG.load(reference) as agent:
        assert agent.checkpoint_policy is None and agent.shipped_policy() is agent.learner.policy_module()
