"""Our re-statement of SRGAN's SRResNet generator in the key layout of Lornatang/SRGAN-PyTorch (model.py;
docs: shared/docs/networks.md §5.3).

  out1 = PReLU(conv9x9(x))                                   conv1 = Sequential(Conv9x9 + bias, PReLU)
  t    = trunk(out1)                                         num_rcb x ResidualConvBlock
         block(t) = t + BN(conv3x3(PReLU(BN(conv3x3(t)))))   rcb = Sequential(Conv no bias, BN, PReLU, Conv no bias, BN)
  out  = BN(conv3x3(t)) + out1                               conv2 = Sequential(Conv no bias, BN)
  out  = upsampling(out)                                     log2(s) x Sequential(Conv3x3 F->4F + bias, PixelShuffle(2), PReLU)
  out  = clamp(conv9x9(out), 0, 1)                           conv3 = Conv9x9 + bias

BatchNorm has PyTorch's defaults (eps 1e-5). PReLU is nn.PReLU() (one shared slope, weight [1]) upstream;
`prelu_per_channel=True` builds nn.PReLU(channels) instead (weight [channels]), which some ports use.
Upstream's upsample block hard-codes PixelShuffle(2), so only x2, x4 and x8 build; x3 does not.
"""
import math

import torch
import torch.nn as nn


def _prelu(channels, per_channel):
    return nn.PReLU(channels) if per_channel else nn.PReLU()


class ResidualConvBlock(nn.Module):
    def __init__(self, channels, prelu_per_channel=False):
        super().__init__()
        self.rcb = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            _prelu(channels, prelu_per_channel),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return self.rcb(x) + x


class UpsampleBlock(nn.Module):
    def __init__(self, channels, prelu_per_channel=False):
        super().__init__()
        self.upsample_block = nn.Sequential(
            nn.Conv2d(channels, channels * 4, 3, 1, 1),
            nn.PixelShuffle(2),
            _prelu(channels, prelu_per_channel),
        )

    def forward(self, x):
        return self.upsample_block(x)


class SRResNet(nn.Module):
    def __init__(self, in_channels=3, out_channels=3, channels=64, num_rcb=16, upscale_factor=4, prelu_per_channel=False):
        super().__init__()
        if upscale_factor not in (2, 4, 8):
            raise ValueError('this SRResNet builds x2, x4 and x8 only (PixelShuffle(2) blocks)')
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, channels, 9, 1, 4), _prelu(channels, prelu_per_channel))
        self.trunk = nn.Sequential(*[ResidualConvBlock(channels, prelu_per_channel) for _ in range(num_rcb)])
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))
        n_up = int(round(math.log2(upscale_factor)))
        self.upsampling = nn.Sequential(*[UpsampleBlock(channels, prelu_per_channel) for _ in range(n_up)])
        self.conv3 = nn.Conv2d(channels, out_channels, 9, 1, 4)

    def forward(self, x, clamp=True):
        out1 = self.conv1(x)
        out = self.conv2(self.trunk(out1)) + out1
        out = self.conv3(self.upsampling(out))
        return torch.clamp(out, 0.0, 1.0) if clamp else out
