"""The ``--help`` of litekit's command lines: every option shows its default.

argparse's `ArgumentDefaultsHelpFormatter` appends ``(default: VALUE)`` to each option's
help. An option whose help already says its default in words (``default: all``, because the
value is None and means something) keeps its own wording instead of ``(default: None)``.
A required option has no default: its help stays as written (the usage line shows it required).
"""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default: argparse's own ``(default: ...)``, unless the help says it or the
    option is required."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if action.required or "default" in help_text.lower():
            return help_text
        return super()._get_help_string(action)
