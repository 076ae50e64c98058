"""Images per second read from Meta-Dataset records against the image-folder path.

    python benchmarks/record_throughput.py                  # 224 px, 0 and 2 workers
    python benchmarks/record_throughput.py --size 84 --workers 0 4 --out results.json

Writes the same JPEGs twice in a temporary folder: as a Meta-Dataset source (one TFRecord
file per class, `litekit.data.md_convert`) and as class-per-folder files. Then reads them
in a fixed random order (as episodes do), in batches through a DataLoader with each
``--workers`` count (0: the main process; each worker one thread), and reports images per
second (the median of ``--repeats`` runs) for:

- ``records``: `litekit.data.MetaDatasetSource` (read a record, check its CRC, parse the
  Example, decode the JPEG, square bilinear resize, [-1, 1]);
- ``folder``: `litekit.data.ImageFolderDataset` (open the file, decode, resize the short
  side with antialiasing, centre crop, to a tensor).

The source JPEGs are ``--source-size`` pixels square (448 by default: about the pixel count
of an average ImageNet photograph), quality 90. Also reports how long building the record
indexes took (the first open of a source: every CRC and record checked once). Prints one
JSON document (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from litekit.data import ImageFolderDataset, ProceduralImages
from litekit.data.md_convert import procedural_jpegs, write_source
from litekit.data.metadataset import MetaDatasetSource


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)


def make_data(folder: Path, classes: int, per_class: int, source_size: int) -> None:
    images = ProceduralImages(
        num_classes=classes, images_per_class=per_class, image_size=source_size, seed=0
    )
    encoded = [procedural_jpegs(images, c, per_class) for c in range(classes)]
    write_source(folder / "records", "bench", encoded, {"TRAIN": classes})
    for c, jpegs in enumerate(encoded):
        (folder / "files" / f"class_{c:03d}").mkdir(parents=True)
        for i, data in enumerate(jpegs):
            (folder / "files" / f"class_{c:03d}" / f"{i:04d}.jpg").write_bytes(data)


def images_per_second(dataset, order: list[int], workers: int, batch: int) -> float:
    loader = DataLoader(
        Subset(dataset, order),
        batch_size=batch,
        num_workers=workers,
        worker_init_fn=_one_thread if workers else None,
        persistent_workers=False,
    )
    iterator = iter(loader)
    next(iterator)  # workers started and warm: time the rest
    start, count = time.perf_counter(), 0
    for images, _ in iterator:
        count += images.shape[0]
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="output image size (px)")
    parser.add_argument("--source-size", type=int, default=448, help="stored JPEG size (px)")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the median is kept")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        make_data(folder, args.classes, args.per_class, args.source_size)
        record_bytes = sum(f.stat().st_size for f in (folder / "records" / "bench").iterdir())
        start = time.perf_counter()
        records = MetaDatasetSource(
            folder / "records", "bench", "TRAIN", args.size, normalization="metadataset"
        )
        indexing = time.perf_counter() - start
        files = ImageFolderDataset(folder / "files", image_size=args.size)
        order = np.random.default_rng(0).permutation(len(records)).tolist()
        rows = []
        for workers in args.workers:
            for name, dataset in (("records", records), ("folder", files)):
                rates = [
                    images_per_second(dataset, order, workers, args.batch)
                    for _ in range(args.repeats)
                ]
                rows.append(
                    {
                        "reader": name,
                        "workers": workers,
                        "images_per_s": round(float(np.median(rates)), 1),
                        "runs": [round(r, 1) for r in rates],
                    }
                )
    result = {
        "benchmark": "record_throughput",
        "image_size": args.size,
        "source_size": args.source_size,
        "images": args.classes * args.per_class,
        "mean_jpeg_kib": round(record_bytes / (args.classes * args.per_class) / 1024, 1),
        "index_build_s": round(indexing, 3),
        "index_build_images_per_s": round(args.classes * args.per_class / indexing, 1),
        "rows": rows,
        "cpu_count": os.cpu_count(),
        # other work on the machine slows every row: the 1-minute load before and after
        "load_average": [load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else None],
        "machine": platform.machine(),
        "torch": torch.__version__,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
