"""segmentation_models_pytorch's Unet with a ResNet34 encoder, restated (smp is not installed here).

Our own definition, written from ../shared/docs/networks.md section 3, equivalent to
`smp.Unet(encoder_name='resnet34', encoder_weights=None, in_channels=C, classes=K,
decoder_attention_type='scse' | None, decoder_channels=(256, 128, 64, 32, 16), activation=None | 'sigmoid')`
and producing exactly its state_dict keys:
  encoder.conv1, encoder.bn1, encoder.layerL.B.{conv1,bn1,conv2,bn2,downsample.0,downsample.1}   (torchvision names)
  decoder.blocks.N.{conv1.0, conv1.1, conv2.0, conv2.1}                                             (Conv2dReLU)
  decoder.blocks.N.{attention1,attention2}.attention.{cSE.1, cSE.3, sSE.0}                          (SCSEModule)
  segmentation_head.0
Block 4 has no skip, so its attention1 holds weights that are never used, exactly as in smp.

`SmpUnet.forward` is smp 0.3's: H and W must be multiples of 32 (`check_input_shape`). `padded_forward` is what
our TypeScript model does for other sizes: pad right/bottom to a multiple of 32 (replicate by default), run,
crop back.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (expansion 1)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """ResNet34 without avgpool/fc; returns the six feature maps smp's decoder takes [x, f1, ..., f5]."""

    def __init__(self, in_channels=3, layers=(3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths = (64, 128, 256, 512)
        cin = 64
        for i, (n, width) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(cin, width, stride)] + [BasicBlock(width, width) for _ in range(n - 1)]
            setattr(self, 'layer%d' % (i + 1), nn.Sequential(*blocks))
            cin = width
        self.out_channels = (in_channels, 64, 64, 128, 256, 512)

    def forward(self, x):
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return [x, f1, f2, f3, f4, f5]


class SCSEModule(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.cSE = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )
        self.sSE = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.cSE(x) + x * self.sSE(x)


class Attention(nn.Module):
    def __init__(self, name, channels):
        super().__init__()
        self.attention = SCSEModule(channels) if name == 'scse' else nn.Identity()

    def forward(self, x):
        return self.attention(x)


class Conv2dReLU(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    def __init__(self, cin, cskip, cout, attention):
        super().__init__()
        self.conv1 = Conv2dReLU(cin + cskip, cout)
        self.attention1 = Attention(attention, cin + cskip)
        self.conv2 = Conv2dReLU(cout, cout)
        self.attention2 = Attention(attention, cout)

    def forward(self, x, skip=None):
        x = F.interpolate(x, scale_factor=2, mode='nearest')
        if skip is not None:
            x = torch.cat([x, skip], dim=1)  # upsampled first, then the skip
            x = self.attention1(x)
        x = self.conv1(x)
        x = self.conv2(x)
        return self.attention2(x)


class UnetDecoder(nn.Module):
    def __init__(self, encoder_channels, decoder_channels, attention):
        super().__init__()
        enc = list(encoder_channels[1:])[::-1]  # f5 first; f0 (the input) is never a skip
        ins = [enc[0]] + list(decoder_channels[:-1])
        skips = enc[1:] + [0]
        self.center = nn.Identity()
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o, attention) for i, s, o in zip(ins, skips, decoder_channels))

    def forward(self, *features):
        feats = features[1:][::-1]
        x = self.center(feats[0])
        skips = feats[1:]
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return x


class SmpUnet(nn.Module):
    def __init__(self, in_channels=3, classes=1, decoder_attention_type='scse',
                 decoder_channels=(256, 128, 64, 32, 16), activation=None):
        super().__init__()
        self.encoder = ResNetEncoder(in_channels)
        self.decoder = UnetDecoder(self.encoder.out_channels, decoder_channels, decoder_attention_type)
        self.segmentation_head = nn.Sequential(
            nn.Conv2d(decoder_channels[-1], classes, 3, padding=1),
            nn.Identity(),
            nn.Sigmoid() if activation == 'sigmoid' else nn.Identity(),
        )

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise RuntimeError('Wrong input shape height=%d, width=%d: smp 0.3 needs multiples of 32' % (h, w))
        return self.segmentation_head(self.decoder(*self.encoder(x)))


def padded_forward(model, x, mode='replicate', multiple=32):
    """Pad right/bottom to a multiple of `multiple` (F.pad mode: 'replicate', 'constant' or 'reflect'), run, crop."""
    h, w = x.shape[-2:]
    ph = -h % multiple
    pw = -w % multiple
    y = model(F.pad(x, (0, pw, 0, ph), mode=mode))
    return y[..., :h, :w]
