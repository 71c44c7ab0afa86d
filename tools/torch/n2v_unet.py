"""Noise2Void's U-Net as CAREamics builds it (2D), and its N2V2 variant: our PyTorch 1.13 reference definition.

Written from reading CAREamics' src/careamics/models/unet/unet.py and src/careamics/models/unet/layers.py (UNet,
UnetEncoder, UnetDecoder, Conv_Block, MaxBlurPool) and config/architectures/unet_config.py (N2V defaults: depth 2,
num_channels_init 32, use_batch_norm True, residual False, final activation none). Module attribute names follow
CAREamics', so `model.state_dict()` has CAREamics' keys and a CAREamics UNet's state_dict (what its BioImage Model
Zoo export saves as weights.pth) loads into `N2VUNet` with `strict=True`, and back.

Structure, for depth D and C = num_channels_init (groups = 1, see below):
  encoder.encoder_blocks        ModuleList [ConvBlock, pool] * D: level n is ConvBlock(C*2^(n-1) or in_channels ->
                                C*2^n) then the pool (no parameters, so the odd indices have no keys)
  decoder.bottleneck            ConvBlock(C*2^(D-1) -> C*2^D -> C*2^(D-1))        (mid width doubled)
  decoder.decoder_blocks        ModuleList [Upsample, ConvBlock] * D: level n (from the bottom) upsamples
                                (bilinear x2, align_corners=False), concatenates [upsampled, skip] on channels
                                (upsampled first), then ConvBlock(2*C*2^(D-n-1) -> ...); the last block keeps
                                C -> C channels and has no doubled mid width
  final_conv                    Conv2d(C, num_classes, 1) with bias; `residual` adds the input after it
ConvBlock = conv3x3 (bias, pad 1) -> BatchNorm -> ReLU -> conv3x3 -> BatchNorm -> ReLU (no BatchNorm with
use_batch_norm=False; CAREamics still builds both BatchNorms, so their keys are in the state_dict either way).

N2V2 (n2v2=True) changes two things and adds no parameters:
  - every pool is MaxBlurPool: F.max_pool2d(kernel 2, stride 1, padding 0) then a depthwise 3x3 blur with the
    normalised Pascal kernel [1,2,1]^T [1,2,1] / 16, zero padding 1, stride 2 (kernel kept as a non-persistent
    buffer: not in the state_dict). Output size floor(H/2), as MaxPool2d(2).
  - the top-level skip connection is dropped: the last decoder block takes C channels, not 2C.
So N2V and N2V2 checkpoints differ in one shape: decoder.decoder_blocks.<2D-1>.conv1.weight [C, 2C or C, 3, 3].

Sizes: H and W must be multiples of 2^D (CAREamics' UNetConstraints rejects others and asks for tiling; the
concatenation would fail in PyTorch).

Not reproduced: independent_channels=True with in_channels > 1 (CAREamics' default for N2V!), which multiplies
every width by groups = in_channels, makes every convolution grouped and interleaves the concatenation per group;
3D (conv_dims=3); dropout; final activations other than none. For in_channels = 1, independent_channels makes no
difference (groups = 1).

state_dict for depth 2, num_channels_init 32, in_channels = num_classes = 1 (N2V; 72 entries: 11 convolutions x
weight, bias; 10 BatchNorms x weight, bias, running_mean, running_var, num_batches_tracked):
  encoder.encoder_blocks.0.conv1.weight            [32, 1, 3, 3]     .conv1.bias [32]
  encoder.encoder_blocks.0.conv2.weight            [32, 32, 3, 3]    .conv2.bias [32]
  encoder.encoder_blocks.0.batch_norm1.*           [32]  (weight, bias, running_mean, running_var;
                                                         num_batches_tracked [])
  encoder.encoder_blocks.0.batch_norm2.*           [32]
  encoder.encoder_blocks.2.conv1.weight            [64, 32, 3, 3]    .conv1.bias [64]
  encoder.encoder_blocks.2.conv2.weight            [64, 64, 3, 3]    .conv2.bias [64]
  encoder.encoder_blocks.2.batch_norm1.*, .batch_norm2.*   [64]
  decoder.bottleneck.conv1.weight                  [128, 64, 3, 3]   .conv1.bias [128]
  decoder.bottleneck.conv2.weight                  [64, 128, 3, 3]   .conv2.bias [64]
  decoder.bottleneck.batch_norm1.* [128], .batch_norm2.* [64]
  decoder.decoder_blocks.1.conv1.weight            [64, 128, 3, 3]   .conv1.bias [64]
  decoder.decoder_blocks.1.conv2.weight            [32, 64, 3, 3]    .conv2.bias [32]
  decoder.decoder_blocks.1.batch_norm1.* [64], .batch_norm2.* [32]
  decoder.decoder_blocks.3.conv1.weight            [32, 64, 3, 3]    .conv1.bias [32]   (N2V2: [32, 32, 3, 3])
  decoder.decoder_blocks.3.conv2.weight            [32, 32, 3, 3]    .conv2.bias [32]
  decoder.decoder_blocks.3.batch_norm1.*, .batch_norm2.*   [32]
  final_conv.weight                                [1, 32, 1, 1]     final_conv.bias [1]
`python3 n2v_unet.py` prints it.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBlock(nn.Module):
    """CAREamics' Conv_Block (2D, stride 1, padding 1, bias, ReLU, no dropout)."""

    def __init__(self, in_channels, out_channels, mid_multiplier=1, use_batch_norm=True):
        super().__init__()
        mid = out_channels * mid_multiplier
        self.use_batch_norm = use_batch_norm
        # Registration order decides the state_dict order: both convolutions, then both BatchNorms.
        self.conv1 = nn.Conv2d(in_channels, mid, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(mid, out_channels, kernel_size=3, padding=1)
        self.batch_norm1 = nn.BatchNorm2d(mid)
        self.batch_norm2 = nn.BatchNorm2d(out_channels)
        self.activation = nn.ReLU()

    def forward(self, x):
        x = self.conv1(x)
        if self.use_batch_norm:
            x = self.batch_norm1(x)
        x = self.activation(x)
        x = self.conv2(x)
        if self.use_batch_norm:
            x = self.batch_norm2(x)
        return self.activation(x)


def pascal_blur_kernel():
    row = torch.tensor([1.0, 2.0, 1.0])
    k = row[:, None] * row[None, :]
    return k / k.sum()


class MaxBlurPool(nn.Module):
    """N2V2's pooling: local maxima over 2x2 windows at stride 1, then a depthwise Pascal blur with stride 2."""

    def __init__(self):
        super().__init__()
        self.register_buffer('kernel', pascal_blur_kernel(), persistent=False)

    def forward(self, x):
        x = F.max_pool2d(x, kernel_size=2, stride=1, padding=0)
        c = x.shape[1]
        w = self.kernel.to(x.dtype).repeat(c, 1, 1, 1)
        return F.conv2d(x, w, padding=1, stride=2, groups=c)


class Encoder(nn.Module):
    def __init__(self, in_channels, depth, num_channels_init, use_batch_norm, n2v2):
        super().__init__()
        pool = MaxBlurPool() if n2v2 else nn.MaxPool2d(kernel_size=2)
        blocks = []
        for n in range(depth):
            out = num_channels_init * 2 ** n
            blocks.append(ConvBlock(in_channels if n == 0 else out // 2, out, use_batch_norm=use_batch_norm))
            blocks.append(pool)
        self.encoder_blocks = nn.ModuleList(blocks)

    def forward(self, x):
        skips = []
        for m in self.encoder_blocks:
            x = m(x)
            if isinstance(m, ConvBlock):
                skips.append(x)
        return x, skips


class Decoder(nn.Module):
    def __init__(self, depth, num_channels_init, use_batch_norm, n2v2):
        super().__init__()
        self.n2v2 = n2v2
        width = num_channels_init * 2 ** (depth - 1)
        self.bottleneck = ConvBlock(width, width, mid_multiplier=2, use_batch_norm=use_batch_norm)
        up = nn.Upsample(scale_factor=2, mode='bilinear')
        blocks = []
        for n in range(depth):
            last = n == depth - 1
            c = num_channels_init * 2 ** (depth - n - 1)
            skip = not (n2v2 and last)
            blocks.append(up)
            blocks.append(ConvBlock(2 * c if skip else c, c if last else c // 2, mid_multiplier=1 if last else 2,
                                    use_batch_norm=use_batch_norm))
        self.decoder_blocks = nn.ModuleList(blocks)

    def forward(self, x, skips):
        depth = len(skips)
        x = self.bottleneck(x)
        for i, m in enumerate(self.decoder_blocks):
            x = m(x)
            level = i // 2
            if isinstance(m, nn.Upsample) and not (self.n2v2 and level == depth - 1):
                x = torch.cat([x, skips[depth - 1 - level]], dim=1)
        return x


class N2VUNet(nn.Module):
    def __init__(self, in_channels=1, num_classes=1, depth=2, num_channels_init=32, use_batch_norm=True, n2v2=False,
                 residual=False):
        super().__init__()
        self.encoder = Encoder(in_channels, depth, num_channels_init, use_batch_norm, n2v2)
        self.decoder = Decoder(depth, num_channels_init, use_batch_norm, n2v2)
        self.final_conv = nn.Conv2d(num_channels_init, num_classes, kernel_size=1)
        self.residual = residual

    def forward(self, x):
        bottom, skips = self.encoder(x)
        y = self.final_conv(self.decoder(bottom, skips))
        return y + x if self.residual else y


if __name__ == '__main__':
    for n2v2 in (False, True):
        sd = N2VUNet(n2v2=n2v2).state_dict()
        print('N2V2' if n2v2 else 'N2V', len(sd), 'entries')
        for k, v in sd.items():
            print('  %-52s %s' % (k, list(v.shape)))
