"""ProtoNets (Snell et al., 2017): classify a query by its distance to each class mean."""

from __future__ import annotations

import torch

from litekit.learners.base import Learner, SupportCache
from litekit.learners.heads import prototype_logits
from litekit.lite import Encoder, Lite, embed_without_grad


class ProtoNets(Learner):
    """logits_k(q) = -||f(q) - μ_k||², μ_k the mean support embedding of class k.

    The only support path is the backbone (``"features"``), so LITE samples one subset.
    """

    def no_grad_support(self, support_images: torch.Tensor, lite: Lite) -> SupportCache:
        return {
            "features": embed_without_grad(
                self.embed, support_images, lite.chunk_size, self.device, **lite.layout
            )
        }

    def task_logits(
        self,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
        query_images: torch.Tensor,
        lite: Lite | None,
        cache: SupportCache | None,
    ) -> torch.Tensor:
        subsets = {} if cache is None else lite.draw(len(support_images), self.support_paths)
        support, queries = self._support_path(
            "features", self.embed, support_images, lite, cache, subsets, query_images
        )
        labels = support_labels.to(self.device)
        return prototype_logits(support, labels, queries, int(labels.max()) + 1)

    def path_encoders(self, cache: SupportCache) -> dict[str, Encoder]:
        return {"features": self.embed}
