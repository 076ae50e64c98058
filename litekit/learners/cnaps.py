"""CNAPs and Simple CNAPs: a set encoder adapts the backbone to each task with FiLM.

The support set enters these models twice:
1. the set encoder s_φ averages over all support images, z = (1/N) Σ_m s_φ(x_m), and a FiLM
   generator turns z into per-channel (γ, β) for the backbone;
2. the adapted backbone embeds support and query images, e_n = f_θ(x_n; γ, β), and a head
   classifies the queries from the support embeddings.
The gradient with respect to φ is therefore a product of two support sums. LITE samples
one subset per path ("set" and "features"); drawn independently, E[A·B] = E[A]·E[B] and
the estimate stays exactly unbiased. Sharing one subset (``independent_subsets=False``)
leaves a bias of order 1/h (Bronskill et al., 2021, §3; checked in the tests).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from litekit.learners.backbones import feature_dim as embedding_size
from litekit.learners.base import Learner, SupportCache
from litekit.learners.film import FilmGenerator, film_applied, film_channels, find_film_layers
from litekit.learners.heads import LinearClassifierGenerator, mahalanobis_logits
from litekit.lite import Encoder, Lite, embed_without_grad


class SetEncoder(nn.Module):
    """A small convolutional set encoder with no normalisation layers.

    Each image is encoded on its own (no batch statistics), so the set encoding
    z = mean_n s_φ(x_n) does not depend on how the support set is chunked.
    """

    def __init__(self, in_channels: int = 3, dim: int = 64, width: int = 32, depth: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = width if i == 0 else dim
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.dim = dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class FilmLearner(Learner):
    """Shared machinery of CNAPs-style learners: set encoder, FiLM generator, two paths.

    Args:
        backbone: module or name, as for every learner.
        set_encoder: a module mapping images to (B, set_dim) codes; default `SetEncoder`.
        set_dim: output size of the set encoder.
        film_layers: backbone module names to modulate; default every normalisation layer.
        film_hidden: width of the FiLM generator's hidden layer.
        backbone_mode: see `Learner`.
        image_channels: input channels of the default set encoder.
        weights: pretrained backbone weights (see `Learner`).
    """

    support_paths = ("set", "features")
    image_encoder_names = ("backbone", "set_encoder", "film")

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        set_encoder: nn.Module | None = None,
        set_dim: int = 64,
        film_layers: Sequence[str] | None = None,
        film_hidden: int = 64,
        backbone_mode: str = "eval",
        image_channels: int = 3,
        weights: str | None = None,
    ) -> None:
        super().__init__(backbone, backbone_mode=backbone_mode, weights=weights)
        self.set_encoder = set_encoder or SetEncoder(image_channels, set_dim)
        self.film_layers = find_film_layers(self.backbone, film_layers)
        self.film = FilmGenerator(
            set_dim, film_channels(self.backbone, self.film_layers), film_hidden
        )
        self.train(self.training)  # hold the set encoder and FiLM generator too (backbone_mode)

    def film_encoder(self, params: list) -> Encoder:
        """The backbone adapted by FiLM parameters ``params``, as an image → embedding map."""

        def encode(images: torch.Tensor) -> torch.Tensor:
            with film_applied(self.backbone, self.film_layers, params):
                return self.embed(images)

        return encode

    def no_grad_support(self, support_images: torch.Tensor, lite: Lite) -> SupportCache:
        def no_grad(encoder: Encoder) -> torch.Tensor:
            return embed_without_grad(
                encoder, support_images, lite.chunk_size, self.device, **lite.layout
            )

        codes = no_grad(self.set_encoder)
        with torch.no_grad():
            params = self.film(codes.mean(0))
        features = no_grad(self.film_encoder(params))
        return {"set": codes, "features": features}

    def path_encoders(self, cache: SupportCache) -> dict[str, Encoder]:
        """The set encoder, and the backbone adapted with the cached set encoding z held
        constant. The FiLM parameters are generated inside each call, so that the FiLM
        generator's weights, taken functionally, receive their part of the gradient."""
        z = cache["set"].mean(0)

        def features(images: torch.Tensor) -> torch.Tensor:
            return self.film_encoder(self.film(z))(images)

        return {"set": self.set_encoder, "features": features}

    def adapt(
        self,
        support_images: torch.Tensor,
        lite: Lite | None,
        cache: SupportCache | None,
        query_images: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Encoder, torch.Tensor | None]:
        """Adapt to the support set, with LITE on both support paths.

        Returns the support features, the task-adapted encoder, and the query features
        (None without ``query_images``), embedded in the same call as the support rows.
        """
        subsets = {} if cache is None else lite.draw(len(support_images), self.support_paths)
        codes, _ = self._support_path("set", self.set_encoder, support_images, lite, cache, subsets)
        encoder = self.film_encoder(self.film(codes.mean(0)))
        features, queries = self._support_path(
            "features", encoder, support_images, lite, cache, subsets, query_images
        )
        return features, encoder, queries

    def task_logits(
        self,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
        query_images: torch.Tensor,
        lite: Lite | None,
        cache: SupportCache | None,
    ) -> torch.Tensor:
        features, _, queries = self.adapt(support_images, lite, cache, query_images)
        labels = support_labels.to(self.device)
        return self.head(features, labels, queries, int(labels.max()) + 1)

    @abstractmethod
    def head(
        self, features: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, way: int
    ) -> torch.Tensor:
        """Query logits (M, K) from adapted support features and query features."""


class SimpleCNAPs(FilmLearner):
    """Simple CNAPs (Bateni et al., 2020): FiLM-adapted backbone, Mahalanobis head.

    See `litekit.learners.heads.mahalanobis_logits` for the shrunk class covariances.
    """

    def head(
        self, features: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, way: int
    ) -> torch.Tensor:
        return mahalanobis_logits(features, labels, queries, way)


class CNAPs(FilmLearner):
    """CNAPs (Requeima et al., 2019): FiLM-adapted backbone, generated linear classifier.

    Takes the arguments of `FilmLearner`, and:

    Args:
        feature_dim: embedding size; inferred from one forward of an example image of
            ``example_size`` pixels when not given.
        classifier_hidden: width of the classifier generator.
        example_size: side of that example image, in pixels.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        *,
        feature_dim: int | None = None,
        classifier_hidden: int = 128,
        example_size: int = 64,
        **kwargs,
    ) -> None:
        super().__init__(backbone, **kwargs)
        if feature_dim is None:
            channels = kwargs.get("image_channels", 3)
            feature_dim = embedding_size(self.backbone, example_size, channels)
        self.classifier = LinearClassifierGenerator(feature_dim, classifier_hidden)

    def head(
        self, features: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, way: int
    ) -> torch.Tensor:
        return self.classifier(features, labels, queries, way)
