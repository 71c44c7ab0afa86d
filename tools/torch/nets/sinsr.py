"""Our own PyTorch definition of the SINSR generator (aaivu/CSM-SR Final-Model/SINSR, "architecture_7", a
TensorFlow/Keras model with no published weights; shared/docs/networks.md §5.1), and its CBAM variant.

Keras facts kept: 'same' padding (symmetric for these odd / dilated kernels), every Conv2D with bias,
SeparableConv2D = depthwise 3x3 without bias then pointwise 1x1 with bias, AveragePooling2D(2) 'valid',
PixelShuffle = tf.nn.depth_to_space (DCR channel order, not torch's PixelShuffle), tanh output on [-1, 1] input.

  DenseLayer(cin -> g):  h = relu(conv(x)); h = relu(conv_dilated(h)); h = relu(pointwise(depthwise(h)))
  RDB(cin -> F):         feats = [x]; for each layer: feats.append(layer(cat(feats)));  return conv_fuse(cat(feats))
                         (no residual inside the block, unlike ESRGAN)
  RRDB(cin -> F):        r = conv_res(x); for each block: x = rdb(x) [; x = cbam(x)];  return x + 0.2 * r
  Net:  x  = relu(conv_first(img))                                         first_feat channels, LR
        s1 = branch1(x)                                                    F, LR
        s2 = d2s(branch2(avgpool2(s1)))                                    F/4, LR
        s4 = avgpool2(branch4(d2s(s1)))                                    F, LR (branch4 runs at 2x LR on F/4)
        y  = relu(conv_fuse(cat(s1, s2, s4))); y = relu(conv_up1(d2s(y))); y = conv_up2(d2s(y))
        out = tanh(conv_last(y))                                           4x LR
  LR height and width must be even (the 2x2 pools).

Defaults follow networks.md: first_feat 128, F 64, growth 4, 5 dense layers per RDB, 5 RDBs per RRDB and 2 RRDBs
per branch: 2,212,711 parameters. (Commit 1e960fac of architecture_7.py has 4 and 4; both are options.)

CBAM (architecture_2.py's cbam_block, applied after every RDB inside an RRDB when attention='cbam'):
  channel gate  g_c = sigmoid(mlp(avgpool(x)) + mlp(maxpool(x))),  mlp = Linear(C, C/r) -> ReLU -> Linear(C/r, C)
  spatial gate  g_s = sigmoid(spatial_conv(cat(mean_c(x * g_c), max_c(x * g_c))))   7x7, pad 3, no bias
  out = (x * g_c) * g_s

State-dict keys (ours; see the comment block in src/models/sinsr.ts):
  conv_first, branch{1,2,4}.<i>.conv_res, branch{1,2,4}.<i>.rdbs.<k>.layers.<l>.{conv,conv_dilated,depthwise,pointwise},
  branch{1,2,4}.<i>.rdbs.<k>.conv_fuse, [branch{1,2,4}.<i>.cbams.<k>.{channel_mlp.0, channel_mlp.2, spatial_conv}],
  conv_fuse, conv_up1, conv_up2, conv_last.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def depth_to_space(x, r):
    """tf.nn.depth_to_space on NCHW: out[c, h*r+i, w*r+j] = in[(i*r + j)*C + c, h, w]."""
    b, c, h, w = x.shape
    co = c // (r * r)
    return x.view(b, r, r, co, h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, co, h * r, w * r)


class DenseLayer(nn.Module):
    def __init__(self, cin, g):
        super().__init__()
        self.conv = nn.Conv2d(cin, g, 3, 1, 1)
        self.conv_dilated = nn.Conv2d(g, g, 3, 1, 2, dilation=2)
        self.depthwise = nn.Conv2d(g, g, 3, 1, 1, groups=g, bias=False)
        self.pointwise = nn.Conv2d(g, g, 1)

    def forward(self, x):
        h = F.relu(self.conv(x))
        h = F.relu(self.conv_dilated(h))
        return F.relu(self.pointwise(self.depthwise(h)))


class RDB(nn.Module):
    def __init__(self, cin, nf, g, num_layers):
        super().__init__()
        self.layers = nn.ModuleList([DenseLayer(cin + i * g, g) for i in range(num_layers)])
        self.conv_fuse = nn.Conv2d(cin + num_layers * g, nf, 3, 1, 1)

    def forward(self, x):
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        return self.conv_fuse(torch.cat(feats, 1))


class CBAM(nn.Module):
    def __init__(self, c, reduction=8):
        super().__init__()
        self.channel_mlp = nn.Sequential(nn.Linear(c, c // reduction), nn.ReLU(), nn.Linear(c // reduction, c))
        self.spatial_conv = nn.Conv2d(2, 1, 7, 1, 3, bias=False)

    def forward(self, x):
        avg = self.channel_mlp(x.mean(dim=(2, 3)))
        mx = self.channel_mlp(x.amax(dim=(2, 3)))
        x = x * torch.sigmoid(avg + mx)[:, :, None, None]
        s = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial_conv(s))


class RRDB(nn.Module):
    def __init__(self, cin, nf, g, num_layers, num_rdbs, attention=None, reduction=8):
        super().__init__()
        self.conv_res = nn.Conv2d(cin, nf, 3, 1, 1)
        self.rdbs = nn.ModuleList([RDB(cin if k == 0 else nf, nf, g, num_layers) for k in range(num_rdbs)])
        self.cbams = nn.ModuleList([CBAM(nf, reduction) for _ in range(num_rdbs)]) if attention == 'cbam' else None

    def forward(self, x):
        r = self.conv_res(x)
        for k, rdb in enumerate(self.rdbs):
            x = rdb(x)
            if self.cbams is not None:
                x = self.cbams[k](x)
        return x + r * 0.2


class SINSRGenerator(nn.Module):
    def __init__(self, in_ch=3, out_ch=3, first_feat=128, num_feat=64, growth=4, num_layers=5, num_rdbs=5,
                 num_rrdbs=2, attention=None, reduction=8):
        super().__init__()
        if num_feat % 4:
            raise ValueError('num_feat must be divisible by 4 (depth_to_space by 2)')
        f, q = num_feat, num_feat // 4

        def branch(cin):
            return nn.ModuleList([RRDB(cin if i == 0 else f, f, growth, num_layers, num_rdbs, attention, reduction)
                                  for i in range(num_rrdbs)])

        self.conv_first = nn.Conv2d(in_ch, first_feat, 3, 1, 1)
        self.branch1 = branch(first_feat)
        self.branch2 = branch(f)
        self.branch4 = branch(q)
        self.conv_fuse = nn.Conv2d(f + q + f, f, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(q, f, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(q, out_ch, 3, 1, 1)
        self.conv_last = nn.Conv2d(out_ch, out_ch, 3, 1, 1)

    @staticmethod
    def _run(branch, x):
        for rrdb in branch:
            x = rrdb(x)
        return x

    def forward(self, img):
        x = F.relu(self.conv_first(img))
        s1 = self._run(self.branch1, x)
        s2 = depth_to_space(self._run(self.branch2, F.avg_pool2d(s1, 2)), 2)
        s4 = F.avg_pool2d(self._run(self.branch4, depth_to_space(s1, 2)), 2)
        y = F.relu(self.conv_fuse(torch.cat([s1, s2, s4], 1)))
        y = F.relu(self.conv_up1(depth_to_space(y, 2)))
        y = self.conv_up2(depth_to_space(y, 2))
        return torch.tanh(self.conv_last(y))
