"""The page "Train on your own images" (docs/own_images.md) runs as printed.

Every ``bash`` and ``python`` block of the page is run, in the page's order, exactly as it
is written, in a fresh folder: the commands, from making the example folders to using the
trained model on a new task. ``python`` is this environment's interpreter (first on PATH),
and timm's cache holds random EfficientNet-B0 weights where the pretrained ones would be,
so ``--weights DEFAULT`` reads them offline as it would read the real ones.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "own_images.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", flags=re.M | re.S)

pytest.importorskip("timm")


def page_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each bash and python block, in the page's order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def fake_timm_cache(root: Path, model: str = "efficientnet_b0") -> Path:
    """Random weights of ``model`` (classifier included, as published) where timm's cache
    keeps its pretrained file: a snapshot folder of the Hugging Face hub cache."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    network = timm.create_model(model, pretrained=False)
    repository = network.pretrained_cfg["hf_hub_id"].replace("/", "--")
    folder = root / f"models--{repository}"
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0" * 40)
    save_file(
        {k: v.contiguous() for k, v in network.state_dict().items()}, snapshot / "model.safetensors"
    )
    return snapshot


def test_the_page_has_every_step_and_only_commands_that_are_run():
    text = PAGE.read_text()
    blocks = page_blocks(text)
    commands = " ".join(code for _, code in blocks)
    for step in ("litekit.data.verify", "litekit.measure plan", "litekit.train",
                 "litekit.evaluate folders", "History.from_dict", "logits.argmax"):  # fmt: skip
        assert step in commands, step
    fences = re.findall(r"^```(\S*)", text, flags=re.M)
    assert set(fences) <= {"bash", "python", "text", ""}, fences  # "" closes a block
    assert "EVALUATE" not in text and "PYTHON\n" not in text


@pytest.mark.timeout(900)
def test_every_command_on_the_page_runs_as_printed(tmp_path):
    fake_timm_cache(tmp_path / "hf")
    environment = dict(os.environ)
    environment.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}",
        PYTHONPATH=f"{ROOT}{os.pathsep}{environment.get('PYTHONPATH', '')}",
        HF_HUB_CACHE=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
    )
    work = tmp_path / "work"
    work.mkdir()
    outputs = []
    for language, code in page_blocks(PAGE.read_text()):
        command = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" else [
            sys.executable, "-c", code
        ]  # fmt: skip
        done = subprocess.run(
            command, cwd=work, env=environment, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (
            f"{code}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
        outputs.append(done.stdout)
    summary = json.loads((work / "runs" / "mine.json").read_text())
    assert summary["steps_done"] == 6 and summary["options"]["augment"] is True
    assert (work / "runs" / "mine.pt").is_file() and (work / "runs" / "mine-curves.png").is_file()
    assert (work / "runs" / "mine.best.pt").is_file()
    test = json.loads((work / "runs" / "mine-test.json").read_text())
    accuracy = test["aggregates"]["accuracy"]
    assert accuracy["n"] == 10 and 0 <= accuracy["mean"] <= 1 and accuracy["ci95"] > 0
    assert any("95% interval" in printed for printed in outputs)
