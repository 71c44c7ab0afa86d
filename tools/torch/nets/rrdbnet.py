"""Our re-statement of ESRGAN's RRDBNet in its three state_dict layouts (shared/docs/networks.md §5.2).

Forward pass (every conv 3x3, stride 1, zero pad 1, bias; lrelu = LeakyReLU(0.2)):

  RDB(x):   x1 = lrelu(conv1(x)); x2 = lrelu(conv2(cat(x, x1))); x3 = lrelu(conv3(cat(x, x1, x2)))
            x4 = lrelu(conv4(cat(x, x1, x2, x3))); x5 = conv5(cat(x, x1, x2, x3, x4)); return x5 * 0.2 + x
  RRDB(x):  return RDB3(RDB2(RDB1(x))) * 0.2 + x
  Net(x):   [scale 2: pixel_unshuffle(x, 2); scale 1: pixel_unshuffle(x, 4)]   (BasicSR only)
            fea = conv_first(x); fea = fea + conv_body(body(fea))
            fea = lrelu(conv_up1(nearest2(fea))); fea = lrelu(conv_up2(nearest2(fea)))
            out = conv_last(lrelu(conv_hr(fea)))

Layouts (same numbers, different names):
  BasicSR  (RRDBNet):        conv_first, body.<i>.rdb<k>.conv<j>, conv_body, conv_up1, conv_up2, conv_hr, conv_last
  xinntao  (RRDBNetXinntao): conv_first, RRDB_trunk.<i>.RDB<k>.conv<j>, trunk_conv, upconv1, upconv2, HRconv, conv_last
  old 2018 (RRDBNetOld):     model.0, model.1.sub.<i>.RDB<k>.conv<j>.0, model.1.sub.<nb>, model.3, model.6, model.8,
                             model.10 (a flat Sequential: 2/5 are Upsample, 4/7/9 LeakyReLU)
The xinntao and old layouts have no pixel_unshuffle (x4 only).
"""
import re

import torch
import torch.nn as nn
import torch.nn.functional as F


def pixel_unshuffle(x, s):
    """out[c*s*s + i*s + j, y, x] = in[c, y*s + i, x*s + j] (BasicSR arch_util.pixel_unshuffle)."""
    b, c, h, w = x.shape
    return x.view(b, c, h // s, s, w // s, s).permute(0, 1, 3, 5, 2, 4).reshape(b, c * s * s, h // s, w // s)


class DenseBlock(nn.Module):
    """The 5-conv residual dense block; `wrap` puts each conv in a Sequential (old layout: conv<j>.0)."""

    def __init__(self, nf, gc, wrap=False):
        super().__init__()
        ins = [nf, nf + gc, nf + 2 * gc, nf + 3 * gc, nf + 4 * gc]
        outs = [gc, gc, gc, gc, nf]
        for j in range(5):
            conv = nn.Conv2d(ins[j], outs[j], 3, 1, 1, bias=True)
            setattr(self, 'conv%d' % (j + 1), nn.Sequential(conv) if wrap else conv)

    def forward(self, x):
        feats = [x]
        for j in range(1, 5):
            feats.append(F.leaky_relu(getattr(self, 'conv%d' % j)(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class RRDBBlock(nn.Module):
    def __init__(self, nf, gc, names=('rdb1', 'rdb2', 'rdb3'), wrap=False):
        super().__init__()
        self.names = names
        for n in names:
            setattr(self, n, DenseBlock(nf, gc, wrap))

    def forward(self, x):
        out = x
        for n in self.names:
            out = getattr(self, n)(out)
        return out * 0.2 + x


def _upsample_tail(fea, up1, up2, hr, last):
    fea = F.leaky_relu(up1(F.interpolate(fea, scale_factor=2, mode='nearest')), 0.2)
    fea = F.leaky_relu(up2(F.interpolate(fea, scale_factor=2, mode='nearest')), 0.2)
    return last(F.leaky_relu(hr(fea), 0.2))


class RRDBNet(nn.Module):
    """BasicSR naming and constructor (num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch)."""

    def __init__(self, num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError('RRDBNet supports scale 1, 2 and 4')
        self.scale = scale
        unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = nn.Conv2d(num_in_ch * unshuffle * unshuffle, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDBBlock(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x):
        if self.scale == 2:
            x = pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = pixel_unshuffle(x, 4)
        fea = self.conv_first(x)
        fea = fea + self.conv_body(self.body(fea))
        return _upsample_tail(fea, self.conv_up1, self.conv_up2, self.conv_hr, self.conv_last)


class RRDBNetXinntao(nn.Module):
    """xinntao/ESRGAN RRDBNet_arch.py naming (in_nc, out_nc, nf, nb, gc), x4."""

    def __init__(self, in_nc=3, out_nc=3, nf=64, nb=23, gc=32):
        super().__init__()
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.RRDB_trunk = nn.Sequential(*[RRDBBlock(nf, gc, names=('RDB1', 'RDB2', 'RDB3')) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)

    def forward(self, x):
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        return _upsample_tail(fea, self.upconv1, self.upconv2, self.HRconv, self.conv_last)


class _Shortcut(nn.Module):
    def __init__(self, sub):
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


class RRDBNetOld(nn.Module):
    """The 2018 layout (ESRGAN architecture.py RRDB_Net with upsample_mode='upconv', x4): one flat Sequential."""

    def __init__(self, in_nc=3, out_nc=3, nf=64, nb=23, gc=32):
        super().__init__()
        trunk = [RRDBBlock(nf, gc, names=('RDB1', 'RDB2', 'RDB3'), wrap=True) for _ in range(nb)]
        trunk.append(nn.Conv2d(nf, nf, 3, 1, 1))
        self.model = nn.Sequential(
            nn.Conv2d(in_nc, nf, 3, 1, 1),                                   # 0
            _Shortcut(nn.Sequential(*trunk)),                                # 1
            nn.Upsample(scale_factor=2, mode='nearest'),                     # 2
            nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2),                   # 3, 4
            nn.Upsample(scale_factor=2, mode='nearest'),                     # 5
            nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2),                   # 6, 7
            nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2),                   # 8, 9
            nn.Conv2d(nf, out_nc, 3, 1, 1),                                  # 10
        )

    def forward(self, x):
        return self.model(x)


def basicsr_to_xinntao(sd):
    out = {}
    fixed = {'conv_body': 'trunk_conv', 'conv_up1': 'upconv1', 'conv_up2': 'upconv2', 'conv_hr': 'HRconv'}
    for k, v in sd.items():
        m = re.match(r'^body\.(\d+)\.rdb(\d)\.(conv\d)\.(weight|bias)$', k)
        if m:
            out['RRDB_trunk.%s.RDB%s.%s.%s' % m.groups()] = v
            continue
        head, tail = k.rsplit('.', 1)
        out['%s.%s' % (fixed.get(head, head), tail)] = v
    return out


def basicsr_to_old(sd, nb):
    out = {}
    fixed = {'conv_first': 'model.0', 'conv_body': 'model.1.sub.%d' % nb, 'conv_up1': 'model.3', 'conv_up2': 'model.6',
             'conv_hr': 'model.8', 'conv_last': 'model.10'}
    for k, v in sd.items():
        m = re.match(r'^body\.(\d+)\.rdb(\d)\.(conv\d)\.(weight|bias)$', k)
        if m:
            out['model.1.sub.%s.RDB%s.%s.0.%s' % m.groups()] = v
            continue
        head, tail = k.rsplit('.', 1)
        out['%s.%s' % (fixed[head], tail)] = v
    return out
