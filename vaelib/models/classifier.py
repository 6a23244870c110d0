"""Attribute classifier: torchvision's ResNet18 for the 40 CelebA attributes, with its stem adapted to 64x64.

The ImageNet stem (7x7 stride-2 conv + max-pool) would shrink a 64x64 face to 16x16 before the first
residual stage. Here the stem is one 3x3 conv without max-pool, of stride `stem_stride`: 2 (the default)
starts the residual stages at 32x32, 1 keeps 64x64 there as CIFAR-style ResNets do, at 4x the compute of
every stage (16x that of the ImageNet stem's 16x16). The attributes of a 64x64 face (glasses, hat, hair,
beard) are still several pixels wide at 32x32, so stride 2 buys a 4x faster classifier for little accuracy.
`width` scales every stage (64 = the standard ResNet18); CPU profiles use a narrower network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from ..data.batches import map_batches
from ..errors import ConfigError

RESNET18_WIDTH = 64


@dataclass(frozen=True)
class ClassifierConfig:
    width: int = RESNET18_WIDTH  # channels of the first stage; stages have width, 2x, 4x, 8x
    num_attributes: int = 40
    stem_stride: int = 2  # 2: residual stages start at 32x32; 1: at 64x64 (4x the compute)

    def __post_init__(self) -> None:
        if self.width < 4 or self.num_attributes < 1 or self.stem_stride not in (1, 2):
            raise ConfigError(f"classifier width must be >= 4, num_attributes >= 1 and stem_stride 1 or 2, "
                              f"not {self}.")


class AttributeClassifier(nn.Module):
    """ResNet18 -> one logit per attribute. Input: float (B, 3, 64, 64) on [0, 1]."""

    def __init__(self, cfg: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.cfg = cfg
        net = torchvision.models.resnet18(weights=None, num_classes=cfg.num_attributes)
        if cfg.width != RESNET18_WIDTH:
            _rescale(net, cfg.width, cfg.num_attributes)
        net.conv1 = nn.Conv2d(3, cfg.width, kernel_size=3, stride=cfg.stem_stride, padding=1, bias=False)
        net.maxpool = nn.Identity()
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.net = net

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, 8 * width): the pooled output of the last stage, before the linear head."""
        n = self.net
        h = n.relu(n.bn1(n.conv1(x)))  # 64x64 -> 32x32 (stem_stride 2) or 64x64 (1)
        h = n.layer4(n.layer3(n.layer2(n.layer1(h))))  # 32 -> 16 -> 8 -> 4 (or 64 -> 8)
        return torch.flatten(n.avgpool(h), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.features(x))


@torch.no_grad()
def predict(model: AttributeClassifier, images: torch.Tensor, batch_size: int = 256,
            with_features: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Probabilities (N, 40) on the CPU for uint8 or [0, 1] float images; optionally penultimate features."""
    def probabilities_and_features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = model.features(x)
        return torch.sigmoid(model.net.fc(h)), h if with_features else h[:, :0]

    probs, feats = map_batches(probabilities_and_features, images, batch_size, next(model.parameters()).device)
    return probs, feats if with_features else None


def _rescale(net: torchvision.models.ResNet, width: int, num_classes: int) -> None:
    """Rebuild the stages of a torchvision ResNet18 with `width` channels in the first stage, initialised
    as torchvision initialises its own (He init for convs, unit BatchNorm)."""
    net.inplanes = width  # `_make_layer` reads and advances this, exactly as ResNet.__init__ does
    net.bn1 = nn.BatchNorm2d(width)
    net.layer1 = net._make_layer(BasicBlock, width, 2)
    net.layer2 = net._make_layer(BasicBlock, 2 * width, 2, stride=2)
    net.layer3 = net._make_layer(BasicBlock, 4 * width, 2, stride=2)
    net.layer4 = net._make_layer(BasicBlock, 8 * width, 2, stride=2)
    net.fc = nn.Linear(8 * width, num_classes)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
