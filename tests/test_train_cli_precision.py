"""python -m litekit.train: --precision, --channels-last and --deterministic reach fit;
--weights reach the backbone and the datasets' normalisation; the options that define a run
guard its checkpoint. Nothing is downloaded: named weights come from a stand-in loader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from litekit import checkpoint as checkpoints
from litekit.data import IMAGENET_NORMALIZATION
from litekit.learners import backbone_from_name, pretrained
from litekit.train import _cli_checks, _cli_options, cli, loop

TINY = [
    "--backbone", "conv4", "--width", "4", "--image-size", "32", "--way", "3", "--shot", "2",
    "--query", "2", "--classes", "20", "--images-per-class", "8", "--h", "2",
    "--tasks-per-step", "1", "--steps", "1", "--validation-tasks", "2", "--device", "cpu",
    "--quiet",
]  # fmt: skip


@pytest.fixture
def fit_calls(monkeypatch) -> list[tuple[tuple, dict]]:
    """fit replaced by a recorder: what the command line would train, without training."""
    calls: list[tuple[tuple, dict]] = []

    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return loop.History()

    monkeypatch.setattr(loop, "fit", record)
    return calls


def run(arguments: list[str], capsys) -> tuple[int, str]:
    code = cli.main(arguments)
    return code, capsys.readouterr().err


def conv4_weights(path: Path, width: int = 4, seed: int = 7) -> dict[str, torch.Tensor]:
    """A conv4 state dict saved at ``path`` (what torch.save(model.state_dict()) writes)."""
    torch.manual_seed(seed)
    state = backbone_from_name("conv4", width=width).state_dict()
    torch.save(state, path)
    return state


def test_precision_layout_and_determinism_reach_fit(fit_calls, capsys):
    code, err = run([*TINY, "--precision", "bf16", "--channels-last", "--deterministic"], capsys)
    assert code == 0, err
    (_, kwargs), = fit_calls  # fmt: skip
    assert kwargs["precision"] == "bf16" and kwargs["channels_last"] is True
    assert kwargs["deterministic"] is True
    assert kwargs["metadata"]["options"]["precision"] == "bf16"
    fit_calls.clear()
    assert run(TINY, capsys)[0] == 0
    (_, kwargs), = fit_calls  # fmt: skip
    assert (kwargs["precision"], kwargs["channels_last"], kwargs["deterministic"]) == (
        "fp32", False, False,
    )  # fmt: skip


def test_a_bf16_channels_last_run_trains_and_records_its_options(tmp_path, capsys):
    out = tmp_path / "summary.json"
    code, err = run([*TINY, "--precision", "bf16", "--channels-last", "--out", str(out)], capsys)
    assert code == 0, err
    summary = json.loads(out.read_text())
    assert summary["options"]["precision"] == "bf16" and summary["options"]["channels_last"]
    assert summary["steps_done"] == 1 and summary["final_loss"] > 0


def test_a_weights_file_reaches_the_backbone_and_normalises_the_data(tmp_path, fit_calls, capsys):
    path = tmp_path / "conv4.pt"
    saved = conv4_weights(path)
    code, err = run([*TINY, "--weights", str(path)], capsys)
    assert code == 0, err
    (args, kwargs), = fit_calls  # fmt: skip
    learner, episodes = args[0], args[1]
    for name, value in learner.backbone.state_dict().items():
        assert torch.equal(value, saved[name]), name
    assert episodes.dataset.dataset.normalization == IMAGENET_NORMALIZATION
    assert kwargs["validation"].dataset.dataset.normalization == IMAGENET_NORMALIZATION
    assert kwargs["metadata"]["options"]["weights"] == str(path.resolve())
    fit_calls.clear()
    assert run(TINY, capsys)[0] == 0  # without weights: random, and no normalisation
    (args, kwargs), = fit_calls  # fmt: skip
    assert args[1].dataset.dataset.normalization is None
    assert kwargs["validation"].dataset.dataset.normalization is None


def test_named_weights_come_from_torchvisions_cache_with_batch_norm_kept(
    monkeypatch, fit_calls, capsys
):
    """No network: the named weights' loader is a stand-in that records what it was asked."""
    torch.manual_seed(3)
    state = torchvision.models.resnet18().state_dict()
    asked = []

    def from_cache(weights, argument="weights"):
        asked.append((str(weights), argument))
        return state

    monkeypatch.setattr(pretrained, "load_named", from_cache)
    code, err = run([*TINY, "--backbone", "resnet18", "--weights", "DEFAULT"], capsys)
    assert code == 0, err
    assert asked == [("ResNet18_Weights.IMAGENET1K_V1", "--weights")]
    (args, kwargs), = fit_calls  # fmt: skip
    backbone = args[0].backbone
    assert any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())  # --norm model
    assert torch.equal(backbone.conv1.weight, state["conv1.weight"])
    assert kwargs["metadata"]["options"]["norm"] == "model"
    assert args[1].dataset.dataset.normalization == IMAGENET_NORMALIZATION


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--backbone", "resnet18", "--weights", "IMAGENET9K"],
         r"--weights='IMAGENET9K': resnet18 has weights \['DEFAULT', 'IMAGENET1K_V1'\]"),
        (["--weights", "DEFAULT"], r"--weights='DEFAULT': named weights come with a torchvision"),
        (["--backbone", "resnet18", "--weights", "DEFAULT", "--norm", "group"],
         r"--norm='group': the pretrained weights 'DEFAULT' were trained with BatchNorm"),
        (["--weights", "{tmp}/absent.pt"], r"--weights='.*absent.pt': no such file"),
        (["--weights", "{tmp}/wide.pt"], r"--weights='.*wide.pt': these weights do not fit"),
        (["--backbone", "resnet18", "--norm", "batch"], r"--norm='batch': resnet18 keeps"),
    ],
)  # fmt: skip
def test_bad_weights_are_named_in_option_terms_before_training(
    change, message, tmp_path, monkeypatch, capsys
):
    def no_download(*args, **kwargs):
        raise AssertionError("named weights were loaded")

    monkeypatch.setattr(pretrained, "load_named", no_download)
    monkeypatch.setattr(loop, "fit", lambda *a, **k: pytest.fail("fit was called"))
    conv4_weights(tmp_path / "wide.pt", width=8)
    before = sorted(tmp_path.iterdir())
    change = [c.replace("{tmp}", str(tmp_path)) for c in change]
    code, err = run([*TINY, *change, "--out", str(tmp_path / "s.json")], capsys)
    assert code == 2, err
    assert err.startswith("python -m litekit.train: error: ") and len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert sorted(tmp_path.iterdir()) == before


def test_bf16_on_a_gpu_without_bfloat16_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    monkeypatch.setattr(cli, "init_from_environment", lambda *a: pytest.fail("joined a group"))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    arguments = [*TINY[:-3], "--device", "cuda", "--precision", "bf16"]
    code, err = run(arguments, capsys)
    assert code == 2 and "--precision='bf16': Tesla V100 has no bfloat16 arithmetic" in err, err


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A one-step fp32 checkpoint of the tiny run, and its bytes."""
    path = tmp_path_factory.mktemp("made") / "run.pt"
    assert cli.main([*TINY, "--validation-tasks", "0", "--checkpoint", str(path)]) == 0
    return path, path.read_bytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--precision", "bf16"], r"--precision='bf16': the checkpoint .* made with --precision "
         r"'fp32'"),
        (["--channels-last"], r"--channels-last=True: the checkpoint .* --channels-last False"),
        (["--weights", "{tmp}/conv4.pt"], r"--weights='.*conv4.pt': the checkpoint .* made with "
         r"--weights None"),
    ],
)  # fmt: skip
def test_precision_layout_and_weights_must_match_to_resume(
    change, message, made, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(loop, "fit", lambda *a, **k: pytest.fail("fit was called"))
    path = tmp_path / "run.pt"
    path.write_bytes(made[1])
    conv4_weights(tmp_path / "conv4.pt")
    change = [c.replace("{tmp}", str(tmp_path)) for c in change]
    arguments = [*TINY, "--validation-tasks", "0", "--steps", "2", "--checkpoint", str(path)]
    code, err = run([*arguments, *change], capsys)
    assert code == 2 and re.search(message, err), err
    assert path.read_bytes() == made[1]


def test_deterministic_is_not_a_run_option(made, tmp_path, fit_calls, capsys):
    path = tmp_path / "run.pt"
    path.write_bytes(made[1])
    arguments = [*TINY, "--validation-tasks", "0", "--steps", "2", "--checkpoint", str(path)]
    code, err = run([*arguments, "--deterministic"], capsys)
    assert code == 0, err
    assert fit_calls[0][1]["deterministic"] is True


def test_a_checkpoint_from_before_these_options_resumes_with_their_defaults(
    made, monkeypatch, tmp_path
):
    """Its options have no precision, channels_last or weights: it was made with the defaults."""
    saved = checkpoints.read(made[0])
    old = {k: v for k, v in saved["metadata"]["options"].items()
           if k not in ("precision", "channels_last", "weights")}  # fmt: skip
    monkeypatch.setattr(checkpoints, "read", lambda path: {**saved, "metadata": {"options": old}})
    args = _cli_options.parse_options([*TINY, "--validation-tasks", "0"])
    _cli_checks.check_options(args)
    options = cli._record(args)
    cli._check_checkpoint(made[0], True, options)  # accepted
    with pytest.raises(ValueError, match=r"^--precision='bf16': the checkpoint"):
        cli._check_checkpoint(made[0], True, {**options, "precision": "bf16"})
