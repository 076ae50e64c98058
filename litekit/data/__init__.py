"""Datasets: the embedded procedural large-image dataset and readers for real data.

- `ProceduralImages`: generated on the fly at 32-512 px, no download; the default.
- `ImageFolderDataset`: class-per-folder images (a checked torchvision ``ImageFolder``).
- `OrbitFrames` and `OrbitTaskSampler`: ORBIT-layout videos and per-user tasks.
- `MetaDatasetSource`: one split of a converted Meta-Dataset source (TFRecord files read
  without TensorFlow: `litekit.data.tfrecord`, `litekit.data.md_spec`).
- `TaskFolder`: one split of a VTAB-style task folder (one large task).
- `litekit.data.normalization`: the per-channel normalisation pretrained weights expect.
- `litekit.data.download`: an optional, checksummed download helper (never run by tests).
"""

from litekit.data.folders import ImageFolderDataset, load_image
from litekit.data.metadataset import MetaDatasetSource
from litekit.data.normalization import IMAGENET_NORMALIZATION
from litekit.data.orbit import OrbitFrames, OrbitTaskSampler
from litekit.data.procedural import ProceduralImages
from litekit.data.task_folder import TaskFolder

__all__ = [
    "IMAGENET_NORMALIZATION",
    "ImageFolderDataset",
    "MetaDatasetSource",
    "OrbitFrames",
    "OrbitTaskSampler",
    "ProceduralImages",
    "TaskFolder",
    "load_image",
]
