"""Our re-statements of the two non-KAIR DnCNN PyTorch layouts (docs: shared/docs/networks.md §2.2, §2.3).

Both keep every layer in one nn.Sequential named `dncnn`, so the state_dict keys are `dncnn.<index>.*`:
  index 0            Conv3x3(image_channels -> n_channels)          (+ bias only in the cszn layout)
  index 1            ReLU
  for k in 0..depth-3:
    index 3k+2       Conv3x3(n_channels -> n_channels, bias=False)
    index 3k+3       BatchNorm2d(n_channels, eps)                   (cszn eps 1e-4, SaoYan eps 1e-5 = default)
    index 3k+4       ReLU
  index 3*depth-4    Conv3x3(n_channels -> image_channels, bias=False)
(depth 17: the last conv is dncnn.47; depth 20: dncnn.56.)

What forward returns differs, and that is the point of keeping two classes:
  CsznDnCNN   (cszn/DnCNN TrainingCodes/dncnn_pytorch)  returns the clean estimate  y - dncnn(y)
  SaoYanDnCNN (SaoYan/DnCNN-PyTorch)                     returns the noise estimate   dncnn(y);
              its test script forms clamp(y - net(y), 0, 1) outside the module.
"""
import torch.nn as nn


def _dncnn_layers(image_channels, n_channels, depth, first_bias, bn_eps, bn_momentum):
    layers = [nn.Conv2d(image_channels, n_channels, 3, padding=1, bias=first_bias), nn.ReLU(inplace=True)]
    for _ in range(depth - 2):
        layers.append(nn.Conv2d(n_channels, n_channels, 3, padding=1, bias=False))
        layers.append(nn.BatchNorm2d(n_channels, eps=bn_eps, momentum=bn_momentum))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Conv2d(n_channels, image_channels, 3, padding=1, bias=False))
    return nn.Sequential(*layers)


class CsznDnCNN(nn.Module):
    """cszn/DnCNN's PyTorch model: DnCNN(depth=17, n_channels=64, image_channels=1, use_bnorm=True, kernel_size=3)."""

    def __init__(self, depth=17, n_channels=64, image_channels=1, use_bnorm=True, kernel_size=3):
        super().__init__()
        assert use_bnorm and kernel_size == 3, 'only the released configuration (BN, 3x3) is modelled'
        self.dncnn = _dncnn_layers(image_channels, n_channels, depth, first_bias=True, bn_eps=1e-4, bn_momentum=0.95)

    def forward(self, x):
        return x - self.dncnn(x)


class SaoYanDnCNN(nn.Module):
    """SaoYan/DnCNN-PyTorch's model: DnCNN(channels, num_of_layers=17). Returns the NOISE, not the image.

    Upstream fixes the width at 64 features; `features` exists here only so that tiny test checkpoints stay small.
    """

    def __init__(self, channels=1, num_of_layers=17, features=64):
        super().__init__()
        self.dncnn = _dncnn_layers(channels, features, num_of_layers, first_bias=False, bn_eps=1e-5, bn_momentum=0.1)

    def forward(self, x):
        return self.dncnn(x)
