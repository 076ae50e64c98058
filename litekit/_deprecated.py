"""Old names that still work for one release, each with a warning that gives the new one.

- `warn_deprecated` says that a name goes, and what to use instead;
- `renamed_keywords` lets a function (or a class's ``__init__``) take a keyword argument
  under its old name;
- `old_names` makes a module answer to the old names of its functions and classes.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def warn_deprecated(old: str, advice: str, *, stacklevel: int = 3) -> None:
    """A `DeprecationWarning`: ``old`` goes in the next release; ``advice`` says what instead."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; {advice}.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_keywords(**renamed: str) -> Callable[[F], F]:
    """Accept each keyword ``old=...`` as ``renamed[old]=...``, with a warning.

    ``@renamed_keywords(episode="episodes")`` on ``meta_train_step(learner, episodes, ...)``
    keeps ``meta_train_step(learner, episode=task, ...)`` working. Passing both names is a
    TypeError, as Python gives for a keyword passed twice.
    """

    def decorate(function: F) -> F:
        name = function.__qualname__.removesuffix(".__init__")

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renamed.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{name}() got {old}= and {new}=; pass {new}= only.")
                    warn_deprecated(f"{name}({old}=...)", f"pass {new}= instead")
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def old_names(module: str, renamed: Mapping[str, tuple[str, Any]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that still answers the old names, with a warning.

    ``renamed`` maps each old name to (what to do instead, the object it gives), e.g.
    ``__getattr__ = old_names(__name__, {"grid": ("it was only used here", _grid)})``.
    """

    def __getattr__(name: str) -> Any:
        if name in renamed:
            advice, value = renamed[name]
            warn_deprecated(f"{module}.{name}", advice)
            return value
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
