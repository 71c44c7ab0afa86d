"""The original U-Net as laid out in milesial/Pytorch-UNet (unet/unet_parts.py, unet/unet_model.py), restated.

Our own definition, written from the description in ../shared/docs/networks.md section 4; it produces exactly
the authors' state_dict keys (inc.double_conv.N, downK.maxpool_conv.1.double_conv.N, upK.up, upK.conv.double_conv.N,
outc.conv), so checkpoints load with strict=True. Two additions that change no key:
  - `base`: the width of the first level (the authors hard-code 64); small values make tiny test networks;
  - `sigmoid`: applies torch.sigmoid to the logits (the authors' model returns logits).

Forward, per level: DoubleConv = [conv3x3 (no bias) -> BatchNorm -> ReLU] x 2; Down = MaxPool2d(2) (floor) ->
DoubleConv; Up = upsample x2 (ConvTranspose2d k2 s2 with bias, or bilinear align_corners=True), zero-pad the
upsampled map to the skip's size with the floor/ceil split, cat([skip, upsampled]), DoubleConv; OutConv = conv1x1
with bias.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, mid=None):
        super().__init__()
        mid = mid or cout
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout, bilinear):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)
            self.conv = DoubleConv(cin, cout, cin // 2)
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(cin, cout)

    def forward(self, low, skip):
        up = self.up(low)
        dy = skip.shape[2] - up.shape[2]
        dx = skip.shape[3] - up.shape[3]
        up = F.pad(up, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, up], dim=1))


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False, base=64, sigmoid=False):
        super().__init__()
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.bilinear = bilinear
        self.sigmoid = sigmoid
        f = 2 if bilinear else 1
        b = base
        self.inc = DoubleConv(n_channels, b)
        self.down1 = Down(b, 2 * b)
        self.down2 = Down(2 * b, 4 * b)
        self.down3 = Down(4 * b, 8 * b)
        self.down4 = Down(8 * b, 16 * b // f)
        self.up1 = Up(16 * b, 8 * b // f, bilinear)
        self.up2 = Up(8 * b, 4 * b // f, bilinear)
        self.up3 = Up(4 * b, 2 * b // f, bilinear)
        self.up4 = Up(2 * b, b, bilinear)
        self.outc = OutConv(b, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        y = self.up1(x5, x4)
        y = self.up2(y, x3)
        y = self.up3(y, x2)
        y = self.up4(y, x1)
        logits = self.outc(y)
        return torch.sigmoid(logits) if self.sigmoid else logits
