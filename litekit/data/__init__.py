"""Datasets: the embedded procedural large-image dataset and readers for real data.

- `ProceduralImages`: generated on the fly at 32-512 px, no download; the default.
- `ImageFolderDataset`: class-per-folder images (a checked torchvision ``ImageFolder``).
- `OrbitFrames` and `OrbitTaskSampler`: ORBIT-layout videos and per-user tasks.
- `litekit.data.normalization`: the per-channel normalisation pretrained weights expect.
- `litekit.data.download`: an optional, checksummed download helper (never run by tests).
"""

from litekit.data.folders import ImageFolderDataset, load_image
from litekit.data.normalization import IMAGENET_NORMALIZATION
from litekit.data.orbit import OrbitFrames, OrbitTaskSampler
from litekit.data.procedural import ProceduralImages

__all__ = [
    "IMAGENET_NORMALIZATION",
    "ImageFolderDataset",
    "OrbitFrames",
    "OrbitTaskSampler",
    "ProceduralImages",
    "load_image",
]
