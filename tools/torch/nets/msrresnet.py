"""Our re-statement of BasicSR's MSRResNet ("modified SRResNet", basicsr/archs/srresnet_arch.py; docs:
shared/docs/networks.md §5.3). No BatchNorm; every conv is 3x3 with bias.

  feat = lrelu(conv_first(x))                       lrelu = LeakyReLU(0.1)
  out  = body(feat)                                 num_block x ResidualBlockNoBN: x + conv2(relu(conv1(x)))
  x4:  out = lrelu(shuffle2(upconv1(out))); out = lrelu(shuffle2(upconv2(out)))    upconv: F -> 4F
  x2/x3: out = lrelu(shuffle_s(upconv1(out)))                                      upconv1: F -> s^2 F
  out  = conv_last(lrelu(conv_hr(out))) + bilinear_upsample(x, s, align_corners=False)

Keys: conv_first, body.<i>.conv1, body.<i>.conv2, upconv1, [upconv2], conv_hr, conv_last (weight and bias each).
"""
import torch.nn as nn
import torch.nn.functional as F


class ResidualBlockNoBN(nn.Module):
    def __init__(self, num_feat=64, res_scale=1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


class MSRResNet(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4):
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError('MSRResNet supports x2, x3 and x4')
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat) for _ in range(num_block)])
        if upscale == 4:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * upscale * upscale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(upscale)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def forward(self, x):
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        return out + F.interpolate(x, scale_factor=self.upscale, mode='bilinear', align_corners=False)
