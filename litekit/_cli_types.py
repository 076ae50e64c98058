"""The option values of litekit's command lines, each checked as it is read.

Each function returns an argparse ``type``: it turns the option's text into its value or
raises an error that reads ``--option=value: what to do``, so that a bad value is refused
while the options are read, before anything is built. ``python -m litekit.train`` and
``python -m litekit.evaluate`` share them, and `_Parser`, whose errors are one-line
ValueErrors rather than argparse's usage text and SystemExit.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from litekit._checks import bad_argument
from litekit.data.folders import bad_path
from litekit.learners.build import check_backbone_name

Convert = Callable[[str], Any]  # an argparse ``type``: the option's text -> its checked value


def option_name(dest: str) -> str:
    """``"image_size"`` -> ``"--image-size"``: the option an argparse destination comes from."""
    return "--" + dest.replace("_", "-")


def _invalid(option: str, value: Any, fix: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(str(bad_argument(option, value, fix)))


def _integer(option: str, minimum: int, fix: str | None = None) -> Convert:
    """An integer >= ``minimum``."""
    fix = fix or f"pass an integer >= {minimum}."

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _invalid(option, text, fix) from None
        if value < minimum:
            raise _invalid(option, value, fix)
        return value

    return convert


def _positive_number(option: str, example: str) -> Convert:
    """A finite number > 0."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _invalid(option, text, f"pass a positive number, e.g. {example}.") from None
        if not (value > 0 and math.isfinite(value)):
            raise _invalid(option, value, f"pass a positive number, e.g. {example}.")
        return value

    return convert


def _choice(option: str, choices: Sequence[str]) -> Convert:
    """One of ``choices``."""

    def convert(text: str) -> str:
        if text not in choices:
            raise _invalid(option, text, f"choose one of {', '.join(map(repr, choices))}.")
        return text

    return convert


def _backbone(option: str) -> Convert:
    """``conv4``, a torchvision classification model's name or ``timm:NAME``; an unknown
    name gets the library's suggestions of close names, under the option's name."""

    def convert(text: str) -> str:
        try:  # checks the name alone: nothing is built
            return check_backbone_name(text, argument=option)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _device(option: str) -> Convert:
    """A device torch can parse, of type cpu or cuda (GPUs are counted in `resolve_device`)."""

    def convert(text: str) -> str:
        try:
            device = torch.device(text)
        except (RuntimeError, TypeError):
            raise _invalid(option, text, "pass 'cpu', 'cuda' or 'cuda:0'.") from None
        if device.type not in ("cpu", "cuda"):
            raise _invalid(option, text, "pass 'cpu' or 'cuda'.")
        return text

    return convert


def _folder(option: str) -> Convert:
    """An existing folder (what is inside is checked when the dataset is read)."""

    def convert(text: str) -> str:
        if not Path(text).is_dir():
            error = bad_path(option, text, "no such folder; see data/README.md for the layout.")
            raise argparse.ArgumentTypeError(str(error))
        return text

    return convert


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line ValueErrors (see `parse_options`)."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(f"{message} (see {self.prog} --help)")


TWO_CLASSES = "a task tells classes apart, so it needs at least 2; pass an integer >= 2."
