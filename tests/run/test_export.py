"""`DDPG.export`: the file computes `act` (obs_norm, network, rescale; pixels from stacked uint8 frames)
in every format, and the npz format's numpy forward is the one docs/deploy.md prints."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ddpg import DDPG
from ddpg.config import resolve
from ddpg.run.export import ExportError

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
SMALL = ["batch_size=16", "learning_starts=60", "eval_every=100000", "progress=false", "video=false"]
AGENTS = {
    # An MLP whose input is rescaled by obs_norm statistics far from (0, 1), with layer norm.
    "mlp_obs_norm": ("Pendulum-v1", None, ["obs_norm=true", "layer_norm=true", "hidden_sizes=[16,16]"]),
    # TD3's actor, with the paper's batch norm (in eval mode: its running statistics).
    "td3": ("Pendulum-v1", "td3", ["batch_norm=true", "hidden_sizes=[16,16]"]),
    # TD7: the actor reads the SALE encoder's z_s (ELU, AvgL1Norm) beside its own normalised input layer.
    "td7": (
        "Pendulum-v1",
        "td7",
        ["obs_norm=true", "hidden_sizes=[16,16]", "zs_dim=8", "encoder_hidden_sizes=[16,16]"],
    ),
    # LaneFollowing's pixel preset, small: 3 stacked frames, a shared encoder ending in layer norm.
    "pixels": (
        "LaneFollowing-v0",
        None,
        [
            "env.camera_width=20",
            "env.camera_height=20",
            "conv_channels=[4,4,4]",
            "encoder_features=8",
            "hidden_sizes=[16,16]",
            "buffer_size=1000",
        ],
    ),
}
FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "npz": ".npz"}


@pytest.fixture(scope="module")
def agents():
    made = {}
    for name, (env_id, algo, overrides) in AGENTS.items():
        agent = DDPG(env_id, resolve(env_id, overrides=[*SMALL, *overrides], algo=algo, seed=3))
        agent.learn(150)
        with torch.no_grad():  # 150 steps leave the paper's tiny final layer: spread actions over the range
            agent.learner.actor.out.weight.normal_(0, 2 / agent.learner.actor.out.in_features**0.5)
        made[name] = agent
    yield made
    for agent in made.values():
        agent.close()


@pytest.fixture(scope="module")
def exported(agents, tmp_path_factory):
    """Each agent in each format, exported once."""
    root = tmp_path_factory.mktemp("exported")
    return {
        (name, fmt): agent.export(root / f"{name}{suffix}", fmt)
        for name, agent in agents.items()
        for fmt, suffix in FORMATS.items()
    }


def observations(agent: DDPG, n: int = 100) -> np.ndarray:
    rng = np.random.default_rng(0)
    if len(agent.obs_shape) == 3:
        return rng.integers(0, 256, (n, *agent.obs_shape), dtype=np.uint8)
    # Beyond the statistics' range too, so obs_norm's clip is exercised.
    return (rng.normal(size=(n, *agent.obs_shape)) * 4).astype(agent.env.observation_space.dtype)


def deploy_snippet(marker: str) -> str:
    """The Python block of docs/deploy.md that holds `marker`, as written there."""
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", DEPLOY.read_text(), re.S) if marker in b]
    return code


def reference_forward() -> dict:
    """The numpy forward of docs/deploy.md."""
    namespace: dict = {}
    exec(deploy_snippet("def load_policy"), namespace)
    return namespace


def run_exported(path: Path, fmt: str, obs: np.ndarray) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime

        return onnxruntime.InferenceSession(str(path)).run(None, {"obs": obs})[0]
    if fmt == "torchscript":
        return torch.jit.load(str(path))(torch.from_numpy(obs)).numpy()
    forward = reference_forward()
    return forward["act"](forward["load_policy"](path), obs)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", AGENTS)
def test_exported_policy_computes_act_from_raw_observations(agents, exported, name, fmt):
    agent = agents[name]
    obs = observations(agent)
    expected = np.stack([agent.act(o) for o in obs])
    actions = run_exported(exported[name, fmt], fmt, obs)
    assert actions.shape == (len(obs), *agent.action_shape) and actions.dtype == expected.dtype
    np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-5)
    # One observation is a batch of one: the batch axis is not fixed by the example exported.
    np.testing.assert_allclose(run_exported(exported[name, fmt], fmt, obs[:1]), expected[:1], atol=1e-5)


def test_onnx_has_one_input_obs_and_one_output_action_with_a_dynamic_batch_axis(agents, exported):
    import onnx

    model = onnx.load(str(exported["pixels", "onnx"]))
    (inp,), (out,) = model.graph.input, model.graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "obs" and out.name == "action"
    assert dims == ["batch", *agents["pixels"].obs_shape]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8  # the frames as the env gives them
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= 18


def test_every_format_says_what_the_policy_expects(agents, exported):
    import onnx

    descriptions = [
        json.loads(
            {p.key: p.value for p in onnx.load(str(exported["pixels", "onnx"])).metadata_props}["ddpg"]
        ),
        json.loads(str(np.load(exported["pixels", "npz"])["description"])),
    ]
    files = {"ddpg.json": ""}
    torch.jit.load(str(exported["pixels", "torchscript"]), _extra_files=files)
    descriptions.append(json.loads(files["ddpg.json"]))
    for d in descriptions:
        assert d["obs_shape"] == [9, 20, 20] and d["obs_dtype"] == "uint8" and d["action_shape"] == [2]
        assert d["observation"]["frame_stack"] == 3 and d["observation"]["action_repeat"] == 3
        assert d["step"] == agents["pixels"].step


def test_export_is_a_copy_the_agent_trains_on_without_changing_it(agents, exported, tmp_path):
    agent = agents["mlp_obs_norm"]
    obs = observations(agent, 5)
    before = run_exported(exported["mlp_obs_norm", "torchscript"], "torchscript", obs)
    path = agent.export(tmp_path / "policy.pt")
    with torch.no_grad():
        for p in agent.shipped_policy().parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(run_exported(path, "torchscript", obs), before)
    with torch.no_grad():
        for p in agent.shipped_policy().parameters():
            p.sub_(1.0)


class Residual(torch.nn.Module):
    """A policy whose forward is not a chain of layers."""

    def __init__(self, actor):
        super().__init__()
        self.actor = actor

    def forward(self, x):
        return self.actor(x) * 0.5 + torch.tanh(x[:, :1])


def test_npz_refuses_a_policy_it_cannot_describe_and_writes_nothing(agents, tmp_path, monkeypatch):
    agent = agents["td3"]
    monkeypatch.setattr(agent, "shipped_policy", lambda: Residual(agent.learner.actor))
    with pytest.raises(ExportError, match="cannot describe the policy's Residual"):
        agent.export(tmp_path / "policy.npz")
    assert list(tmp_path.iterdir()) == []
    agent.export(tmp_path / "policy.pt")  # TorchScript takes any module
    assert [p.name for p in tmp_path.iterdir()] == ["policy.pt"]


def test_onnx_without_its_packages_says_what_to_install(agents, tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "onnxscript" else find_spec(n, *a)
    )
    with pytest.raises(ExportError, match=r"needs onnxscript: pip install 'ddpg\[export\]'"):
        agents["td3"].export(tmp_path / "policy.onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_robot_loop_of_docs_deploy_acts_as_the_agent_in_its_env(agents, exported, tmp_path, monkeypatch):
    """The camera → frames → policy → wheels loop, fed the camera's frames of a LaneFollowing episode."""
    agent = agents["pixels"]
    env = agent.recipe.make(agent.config)
    obs, _ = env.reset(seed=5)
    channels = agent.obs_shape[0] // agent.config.observation.frame_stack
    sent, expected, ended = [], [], False

    class Camera:
        def read(self):  # the newest frame of the stack, as the camera gives it: (H, W, C)
            return np.moveaxis(obs[-channels:], 0, -1)

    class Wheels:
        def set_speeds(self, left, right):
            nonlocal obs, ended
            sent.append([left, right])
            expected.append(agent.act(obs))
            obs, _, terminated, truncated, _ = env.step(np.array([left, right], np.float32))
            ended = terminated or truncated

    class Robot:
        def running(self):
            return len(sent) < 12 and not ended

        def wait(self, periods):
            assert periods == agent.config.observation.action_repeat

    (tmp_path / "lane.onnx").write_bytes(exported["pixels", "onnx"].read_bytes())
    monkeypatch.chdir(tmp_path)
    exec(deploy_snippet("while robot.running()"), {"camera": Camera(), "wheels": Wheels(), "robot": Robot()})
    env.close()
    assert len(sent) >= 5
    np.testing.assert_allclose(sent, expected, rtol=0, atol=1e-5)
