"""Meta-Dataset's ``dataset_spec.json``: a source's classes, splits and record files.

Each converted Meta-Dataset source is a folder holding ``dataset_spec.json`` and one record
file per class. The spec's ``__class__`` says which of three kinds it is:

- ``DatasetSpecification``: ``classes_per_split`` {"TRAIN", "VALID", "TEST"} counts, class
  ids contiguous in that order (train first), ``images_per_class`` and ``class_names`` keyed
  by class id (as strings, since JSON keys are);
- ``BiLevelDatasetSpecification`` (Omniglot): ``superclasses_per_split`` and
  ``classes_per_superclass`` instead: superclasses (alphabets) are contiguous per split and
  their classes (characters) contiguous per superclass, so an episode can be drawn from one
  superclass;
- ``HierarchicalDatasetSpecification`` (ImageNet in Meta-Dataset's own split):
  ``split_subgraphs`` (the WordNet graph of each split) and ``images_per_class`` per split
  keyed by WordNet id; its classes are the leaves of each split's graph, and
  ``class_names`` maps class ids to WordNet ids. litekit reads the classes and their sizes;
  it does not sample along the graph (see `litekit.md_episodes`).

``file_pattern`` is ``"{}.tfrecords"`` (one file per class) or ``"{}_{}.tfrecords"`` (a
class in several shards, ``<class id>_<shard>.tfrecords``, read as one pool in shard
order). Example-level splits ("pools": images_per_class values that are dicts) are refused.
The spec's ``path`` is where the converter wrote the files; litekit reads the files from
the folder the spec is in, so a source can be moved or mounted anywhere. A spec written
by other tools may leave out ``__class__`` (the kind is then read from its fields),
``class_names``, ``superclass_names``, ``name``, ``path`` and ``file_pattern`` (then
``"{}.tfrecords"``); the counts are required.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litekit.data.folders import bad_path

SPLITS = ("TRAIN", "VALID", "TEST")
FILE_PATTERNS = ("{}.tfrecords", "{}_{}.tfrecords")
KINDS = ("DatasetSpecification", "BiLevelDatasetSpecification", "HierarchicalDatasetSpecification")
SPEC_FILE = "dataset_spec.json"
CONVERT = "see data/README.md for how to convert a Meta-Dataset source"


@dataclass(frozen=True)
class SourceSpec:
    """One source's spec: which classes each split holds, their sizes and names.

    ``split_classes[split]`` lists the class ids of a split in order; ``superclasses[split]``
    (bi-level specs only) lists each superclass of the split as the ids of its classes.
    """

    name: str
    folder: Path
    kind: str
    file_pattern: str
    images_per_class: dict[int, int]
    class_names: dict[int, str]
    split_classes: dict[str, list[int]]
    superclasses: dict[str, list[list[int]]] | None = None
    superclass_names: dict[int, str] = field(default_factory=dict)

    @property
    def spec_file(self) -> Path:
        return self.folder / SPEC_FILE

    def class_files(self, class_id: int) -> list[Path]:
        """The record files of ``class_id``: one, or its shards in shard order. A missing
        file is an error naming it."""
        if self.file_pattern == "{}.tfrecords":
            path = self.folder / self.file_pattern.format(class_id)
            if not path.is_file():
                raise bad_path(
                    "record file",
                    path,
                    f"missing, but {self.spec_file} lists class {class_id} "
                    f"({self.class_names.get(class_id, '?')!r}); restore the file or convert "
                    f"the source again ({CONVERT}).",
                )
            return [path]
        shard = re.compile(rf"^{class_id}_(\d+)\.tfrecords$")
        found = sorted(
            (int(match.group(1)), entry)
            for entry in self.folder.iterdir()
            if (match := shard.match(entry.name)) and entry.is_file()
        )
        if not found:
            path = self.folder / f"{class_id}_0.tfrecords"
            raise bad_path(
                "record file",
                path,
                f"missing: {self.spec_file} lists class {class_id} with file_pattern "
                f"'{{}}_{{}}.tfrecords', but no shard {class_id}_<n>.tfrecords is there; "
                f"restore the files or convert the source again ({CONVERT}).",
            )
        return [path for _, path in found]


def _object(spec_file: Path, data: dict, key: str, kind: type = dict) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise bad_path(
            "dataset spec",
            spec_file,
            f"has no {kind.__name__} {key!r}; it is not a Meta-Dataset dataset_spec.json, or "
            f"is damaged ({CONVERT}).",
        )
    return value


def _by_int_key(spec_file: Path, data: dict, key: str) -> dict[int, Any]:
    try:
        return {int(k): v for k, v in _object(spec_file, data, key).items()}
    except ValueError as error:
        raise bad_path(
            "dataset spec", spec_file, f"{key!r} has a key that is not a class id ({error})."
        ) from error


def _counts(spec_file: Path, data: dict, key: str) -> dict[str, int]:
    counts = _object(spec_file, data, key)
    if set(counts) != set(SPLITS) or not all(
        isinstance(n, int) and n >= 0 for n in counts.values()
    ):
        raise bad_path(
            "dataset spec",
            spec_file,
            f"{key!r} must give a count >= 0 for each of {', '.join(SPLITS)}; it is {counts}.",
        )
    return counts


def _sizes(spec_file: Path, raw: dict[int, Any]) -> dict[int, int]:
    sizes = {}
    for class_id, count in raw.items():
        if isinstance(count, dict):
            raise bad_path(
                "dataset spec",
                spec_file,
                f"class {class_id} has example-level splits (pools {sorted(count)}), which "
                "litekit does not read; convert the source without them.",
            )
        if not isinstance(count, int) or count < 0:
            raise bad_path(
                "dataset spec",
                spec_file,
                f"class {class_id} has {count!r} images; expected a count.",
            )
        sizes[class_id] = count
    return sizes


def _contiguous(counts: dict[str, int]) -> dict[str, list[int]]:
    out, start = {}, 0
    for split in SPLITS:
        out[split] = list(range(start, start + counts[split]))
        start += counts[split]
    return out


def _bilevel(spec_file: Path, data: dict) -> tuple[dict, dict]:
    per_split = _counts(spec_file, data, "superclasses_per_split")
    per_superclass = _by_int_key(spec_file, data, "classes_per_superclass")
    superclasses, splits, first_class, first_super = {}, {}, 0, 0
    for split in SPLITS:
        groups = []
        for superclass in range(first_super, first_super + per_split[split]):
            if superclass not in per_superclass:
                raise bad_path(
                    "dataset spec",
                    spec_file,
                    f"'classes_per_superclass' has no entry for superclass {superclass}.",
                )
            count = int(per_superclass[superclass])
            groups.append(list(range(first_class, first_class + count)))
            first_class += count
        first_super += per_split[split]
        superclasses[split] = groups
        splits[split] = [c for group in groups for c in group]
    return splits, superclasses


def _hierarchical(spec_file: Path, data: dict, names: dict[int, str]) -> tuple[dict, dict]:
    graphs = _object(spec_file, data, "split_subgraphs")
    counts = _object(spec_file, data, "images_per_class")
    ids = {wn_id: class_id for class_id, wn_id in names.items()}
    splits, sizes = {}, {}
    for split in SPLITS:
        nodes = graphs.get(split, [])
        leaves = sorted(
            ids[node["wn_id"]]
            for node in nodes
            if not node.get("children_ids") and node.get("wn_id") in ids
        )
        splits[split] = leaves
        for class_id in leaves:
            sizes[class_id] = counts.get(split, {}).get(names[class_id])
    return splits, sizes


def _kind_by_fields(data: dict) -> str | None:
    """The spec's kind from its fields, for a spec written without ``__class__``."""
    if "superclasses_per_split" in data:
        return "BiLevelDatasetSpecification"
    if "split_subgraphs" in data:
        return "HierarchicalDatasetSpecification"
    if "classes_per_split" in data:
        return "DatasetSpecification"
    return None


def load_spec(folder: str | os.PathLike, argument: str = "root") -> SourceSpec:
    """Read ``folder/dataset_spec.json``; errors name the file (or ``argument`` and the
    folder when there is no spec) and say what to do."""
    folder = Path(folder)
    spec_file = folder / SPEC_FILE
    if not spec_file.is_file():
        raise bad_path(
            argument,
            folder,
            f"holds no {SPEC_FILE}, so it is not a converted Meta-Dataset source; {CONVERT}.",
        )
    try:
        data = json.loads(spec_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_path(
            "dataset spec", spec_file, f"cannot be read as JSON ({error}); {CONVERT}."
        ) from error
    if isinstance(data, dict) and "__class__" not in data:
        # Written without the class tag (not by Meta-Dataset's converter): read by its fields.
        data = {**data, "__class__": _kind_by_fields(data)}
    if not isinstance(data, dict) or data.get("__class__") not in KINDS:
        kind = data.get("__class__") if isinstance(data, dict) else None
        raise bad_path(
            "dataset spec",
            spec_file,
            f"'__class__' is {kind!r}; expected one of {', '.join(KINDS)} ({CONVERT}).",
        )
    kind = data["__class__"]
    pattern = data.get("file_pattern", FILE_PATTERNS[0])
    if pattern not in FILE_PATTERNS:
        raise bad_path(
            "dataset spec",
            spec_file,
            f"'file_pattern' is {pattern!r}; Meta-Dataset writes {' or '.join(FILE_PATTERNS)}.",
        )
    names = {}
    if "class_names" in data or kind == "HierarchicalDatasetSpecification":
        names = {k: str(v) for k, v in _by_int_key(spec_file, data, "class_names").items()}
    superclasses, superclass_names = None, {}
    if kind == "HierarchicalDatasetSpecification":
        splits, raw_sizes = _hierarchical(spec_file, data, names)
    else:
        raw_sizes = _by_int_key(spec_file, data, "images_per_class")
        if kind == "BiLevelDatasetSpecification":
            splits, superclasses = _bilevel(spec_file, data)
            if "superclass_names" in data:
                superclass_names = {
                    k: str(v) for k, v in _by_int_key(spec_file, data, "superclass_names").items()
                }
        else:
            splits = _contiguous(_counts(spec_file, data, "classes_per_split"))
    listed = [c for split in SPLITS for c in splits[split]]
    missing = [c for c in listed if c not in raw_sizes or raw_sizes[c] is None]
    if missing:
        raise bad_path(
            "dataset spec",
            spec_file,
            f"gives no image count for classes {missing[:5]}; {CONVERT}.",
        )
    return SourceSpec(
        name=str(data.get("name", folder.name)),
        folder=folder,
        kind=kind,
        file_pattern=pattern,
        images_per_class=_sizes(spec_file, {c: raw_sizes[c] for c in listed}),
        class_names={c: names.get(c, str(c)) for c in listed},
        split_classes=splits,
        superclasses=superclasses,
        superclass_names=superclass_names,
    )
