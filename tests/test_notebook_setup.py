"""A notebook's first cell, without a kernel: interactive or not, device, threads, renderer."""

from __future__ import annotations

import plotly.io as pio
import pytest
import torch

from litekit import notebook
from litekit.notebook import NotebookSetup, setup_notebook


@pytest.fixture(autouse=True)
def restore_global_state(monkeypatch):
    """setup_notebook changes torch's threads and plotly's renderer: put them back."""
    renderer, threads = pio.renderers.default, torch.get_num_threads()
    monkeypatch.setattr(pio.renderers, "default", renderer)
    yield
    pio.renderers.default = renderer
    torch.set_num_threads(threads)


def test_is_interactive_only_in_a_server_started_kernel(monkeypatch):
    import IPython

    class ZMQInteractiveShell:  # the name is what the check looks at
        pass

    monkeypatch.setattr(IPython, "get_ipython", lambda: ZMQInteractiveShell())
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/03.ipynb")
    monkeypatch.setenv("LITEKIT_HEADLESS", "0")
    assert notebook.is_interactive()
    monkeypatch.setenv("LITEKIT_HEADLESS", "1")
    assert not notebook.is_interactive()
    monkeypatch.setenv("LITEKIT_HEADLESS", "")
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert not notebook.is_interactive()  # papermill, nbval, nbconvert
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert not notebook.is_interactive()  # plain Python


def test_interactive_runs_render_plotly_as_its_mimetype():
    pio.renderers.default = "png"
    interactive, device = setup_notebook(True, device="cpu")
    assert interactive is True and device == torch.device("cpu")
    assert pio.renderers.default == "plotly_mimetype"


def test_headless_runs_leave_the_renderer_alone():
    pio.renderers.default = "png"
    assert setup_notebook(False) == NotebookSetup(False, setup_notebook(False).device)
    assert pio.renderers.default == "png"


def test_none_detects(monkeypatch):
    monkeypatch.setattr(notebook, "is_interactive", lambda: True)
    assert setup_notebook(None).interactive is True
    monkeypatch.setattr(notebook, "is_interactive", lambda: False)
    assert setup_notebook().interactive is False


@pytest.mark.parametrize(("cuda", "expected"), [(False, "cpu"), (True, "cuda")])
def test_auto_picks_cuda_when_present(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert setup_notebook(False, device="auto").device == torch.device(expected)
    assert setup_notebook(False, device="cpu").device == torch.device("cpu")


def test_cuda_devices_are_checked_against_the_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert setup_notebook(False, device="cuda:1").device == torch.device("cuda:1")
    with pytest.raises(ValueError, match=r"^device='cuda:2': there are 2 CUDA devices"):
        setup_notebook(False, device="cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device='cuda': this machine has no CUDA device"):
        setup_notebook(False, device="cuda")


def test_threads_are_set():
    torch.set_num_threads(2)
    setup_notebook(False, threads=1)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    setup_notebook(False, threads=None)  # None leaves torch's setting
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize(
    ("keywords", "argument"),
    [
        ({"interactive": "yes"}, "interactive"),
        ({"interactive": 1}, "interactive"),
        ({"device": "gpu"}, "device"),
        ({"device": "mps"}, "device"),
        ({"device": None}, "device"),
        ({"threads": 0}, "threads"),
        ({"threads": 2.5}, "threads"),
    ],
)
def test_bad_arguments_change_nothing(keywords, argument):
    pio.renderers.default = "png"
    before = torch.get_num_threads()
    arguments = {"interactive": True, "threads": before + 1, **keywords}
    with pytest.raises(ValueError, match=rf"^{argument}="):
        setup_notebook(arguments.pop("interactive"), **arguments)
    assert pio.renderers.default == "png" and torch.get_num_threads() == before
