"""Tensor memory, counted from the tensors themselves: deterministic on any device.

Two questions, two counters, one ledger:

- `SavedTensorMemory`: how many bytes does autograd keep for backward at once? That is the
  activation memory LITE cuts (it grows with h, not N); a task-gradient measurement reports
  it. Parameters are left out: they are memory the model holds anyway.
- `CreatedTensorMemory`: how many bytes do the tensors a call creates hold at once (forward,
  backward and optimiser alike)? That is the cost-to-personalise measure off CUDA, where a
  process's resident size cannot show it (the allocator keeps freed memory and hands it out
  again).

Both count a storage once, however many tensors alias it (views, in-place results, one
tensor saved twice), from its first holder until its last holder is freed (a weak-reference
finaliser), and keep the largest total reached. Memory a kernel uses without a tensor (a
convolution's scratch space) is not seen.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

StorageKey = tuple[str, int]


def storage_of(value: object) -> tuple[StorageKey, torch.UntypedStorage] | None:
    """A tensor's storage and its key (device, address); None for anything without one."""
    if not isinstance(value, torch.Tensor):
        return None
    try:
        storage = value.untyped_storage()
    except (RuntimeError, NotImplementedError):  # sparse and other storage-less layouts
        return None
    return (str(storage.device), storage.data_ptr()), storage


class _LiveStorages:
    """Bytes of the storages held now (``live``) and the most held at once (``peak``)."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self._held: dict[StorageKey, list[int]] = {}  # key -> [holders, bytes]
        self._finalizers: list[weakref.finalize] = []

    def __contains__(self, key: StorageKey) -> bool:
        return key in self._held

    def hold(self, key: StorageKey, size: int, holder: object) -> None:
        """Count ``key``'s ``size`` bytes until ``holder`` (and every other holder) is freed."""
        entry = self._held.get(key)
        if entry is None:
            entry = self._held[key] = [0, size]
            self.live += size
            self.peak = max(self.peak, self.live)
        entry[0] += 1
        self._finalizers.append(weakref.finalize(holder, self._release, key))

    def _release(self, key: StorageKey) -> None:
        entry = self._held.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._held[key]

    def stop_watching(self) -> None:
        """Leave storages that outlive the measurement alone (``live`` stays as it is)."""
        for finalizer in self._finalizers:
            finalizer.detach()
        self._finalizers.clear()


class _Saved:
    """What autograd holds for one saved tensor while it is watched (weak-referenceable)."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class _Counting:
    """``live`` and ``peak`` of a measurement, read from its `_LiveStorages`."""

    _storages: _LiveStorages

    @property
    def live(self) -> int:
        return self._storages.live

    @property
    def peak(self) -> int:
        return self._storages.peak


class SavedTensorMemory(_Counting):
    """``with SavedTensorMemory(model) as saved: loss.backward()``, then ``saved.peak``.

    Every tensor autograd saves for backward inside the block passes through
    ``torch.autograd.graph.saved_tensors_hooks``; its bytes count until the graph that saved
    it is freed (after its backward pass). With query batching the peak is therefore that of
    one batch's graph. The storages of ``model``'s parameters are not counted.

    Attributes:
        live: bytes saved for backward and not yet released.
        peak: the largest ``live`` reached in the block.
    """

    def __init__(self, model: nn.Module | None = None) -> None:
        parameters = model.parameters() if model is not None else ()
        self._excluded = {found[0] for p in parameters if (found := storage_of(p))}
        self._storages = _LiveStorages()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, tensor: torch.Tensor) -> _Saved:
        held = _Saved(tensor)
        found = storage_of(tensor)
        if found is not None:
            key, storage = found
            if key not in self._excluded and storage.nbytes() > 0:
                self._storages.hold(key, storage.nbytes(), held)
        return held

    @staticmethod
    def _unpack(held: _Saved) -> torch.Tensor:
        return held.tensor

    def __enter__(self) -> SavedTensorMemory:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
        self._storages.stop_watching()


class CreatedTensorMemory(_Counting, TorchDispatchMode):
    """``with CreatedTensorMemory() as created: work()``, then ``created.peak``.

    Every storage an operator returns inside the block (forward, backward and optimiser
    alike, on any device) is counted from its creation until it is freed; views and in-place
    results share their storage and add nothing. Tensors that existed before the block
    (weights, inputs) are not counted.

    Attributes:
        live: bytes of the counted storages alive now (at the end of the block: those that
            outlive it).
        peak: the largest ``live`` reached inside the block.
    """

    def __init__(self) -> None:
        super().__init__()
        self._storages = _LiveStorages()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {found[0] for v in tree_flatten((args, kwargs))[0] if (found := storage_of(v))}
        for value in tree_flatten(out)[0]:
            found = storage_of(value)
            if found is None:
                continue
            key, storage = found
            # Views and in-place results alias an input's storage (perhaps one from before
            # the block): nothing new.
            if storage.nbytes() == 0 or key in inputs or key in self._storages:
                continue
            self._storages.hold(key, storage.nbytes(), storage)
        return out

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self._storages.stop_watching()
