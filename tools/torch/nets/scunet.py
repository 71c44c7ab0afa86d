"""SCUNet (Swin-Conv U-Net, cszn/SCUNet models/network_scunet.py) restated in plain PyTorch 1.13.

Our own definition, written from the specification in ../shared/docs/networks.md section 1, with the authors'
module tree so that `state_dict()` has exactly the keys of the released checkpoints (scunet_gray_25.pth etc.):
  m_head.0, m_down{1,2,3}.{0..n-1} (ConvTransBlocks) + m_down*.{n} (2x2 s2 conv), m_body.{0..n-1},
  m_up{3,2,1}.0 (2x2 s2 transposed conv) + m_up*.{1..n}, m_tail.0;
  per block: trans_block.{ln1,msa.{relative_position_params,embedding_layer,linear},ln2,mlp.{0,2}},
  conv1_1, conv1_2, conv_block.{0,2}.
No einops or timm: the rearranges are written as reshape/permute, DropPath is identity (rate 0 in every release).

Numerics as the reference: replicate padding right/bottom to a multiple of 64 and a crop back, W/SW alternation
inside each stage (SW forced to W only when the stage's constructor-time input_resolution <= 8), 8x8 windows,
head dim 32, relative position bias [heads, 15, 15] indexed [h, r_q - r_k + 7, c_q - c_k + 7], SW mask on the
last window row/column, exact-erf GELU, LayerNorm eps 1e-5, additive U-Net skips, no clamp.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_DIM = 32
WINDOW = 8


def relative_bias(params, ws=WINDOW):
    """params [heads, 2ws-1, 2ws-1] -> [heads, ws*ws, ws*ws], query token first, tokens row-major (p = ws*r + c)."""
    r = torch.arange(ws).repeat_interleave(ws)  # row of token p
    c = torch.arange(ws).repeat(ws)  # column of token p
    dr = r[:, None] - r[None, :] + ws - 1
    dc = c[:, None] - c[None, :] + ws - 1
    return params[:, dr, dc]


def shifted_window_mask(n_wh, n_ww, ws=WINDOW):
    """[n_wh*n_ww, ws*ws, ws*ws] bool, True where SW-MSA hides key q from query p (regions split at ws//2)."""
    s = ws // 2
    r = torch.arange(ws).repeat_interleave(ws)
    c = torch.arange(ws).repeat(ws)
    row_split = (r[:, None] < s) != (r[None, :] < s)
    col_split = (c[:, None] < s) != (c[None, :] < s)
    mask = torch.zeros(n_wh, n_ww, ws * ws, ws * ws, dtype=torch.bool)
    mask[-1, :] |= row_split
    mask[:, -1] |= col_split
    return mask.reshape(n_wh * n_ww, ws * ws, ws * ws)


class WMSA(nn.Module):
    """Window (W) or shifted-window (SW) multi-head self-attention on a channels-last map [b, H, W, C]."""

    def __init__(self, dim, shifted):
        super().__init__()
        self.dim = dim
        self.heads = dim // HEAD_DIM
        self.shifted = shifted
        self.embedding_layer = nn.Linear(dim, 3 * dim, bias=True)
        self.relative_position_params = nn.Parameter(torch.zeros(self.heads, 2 * WINDOW - 1, 2 * WINDOW - 1))
        nn.init.trunc_normal_(self.relative_position_params, std=0.02)
        self.linear = nn.Linear(dim, dim)

    def forward(self, x):
        ws, s, hd, nh = WINDOW, WINDOW // 2, HEAD_DIM, self.heads
        if self.shifted:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
        b, H, W, C = x.shape
        n_wh, n_ww = H // ws, W // ws
        # 'b (w1 p1) (w2 p2) c -> b (w1 w2) (p1 p2) c'
        x = x.reshape(b, n_wh, ws, n_ww, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(b, n_wh * n_ww, ws * ws, C)
        qkv = self.embedding_layer(x)
        # 'b nw np (threeh c) -> threeh b nw np c' with c = 32, then chunk(3): [Q heads | K heads | V heads].
        qkv = qkv.reshape(b, n_wh * n_ww, ws * ws, 3 * nh, hd).permute(3, 0, 1, 2, 4)
        q, k, v = qkv[:nh], qkv[nh:2 * nh], qkv[2 * nh:]
        sim = torch.einsum('hbwpc,hbwqc->hbwpq', q, k) * hd ** -0.5
        sim = sim + relative_bias(self.relative_position_params)[:, None, None]
        if self.shifted:
            sim = sim.masked_fill(shifted_window_mask(n_wh, n_ww).to(sim.device), float('-inf'))
        probs = torch.softmax(sim, dim=-1)
        out = torch.einsum('hbwpq,hbwqc->hbwpc', probs, v)
        out = out.permute(1, 2, 3, 0, 4).reshape(b, n_wh * n_ww, ws * ws, nh * hd)  # 'h b w p c -> b w p (h c)'
        out = self.linear(out)
        out = out.reshape(b, n_wh, n_ww, ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(b, H, W, C)
        if self.shifted:
            out = torch.roll(out, shifts=(s, s), dims=(1, 2))
        return out


class Block(nn.Module):
    """Swin block, channels-last: x + WMSA(LN(x)), then x + MLP(LN(x)) with exact GELU."""

    def __init__(self, dim, shifted):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)  # eps 1e-5
        self.msa = WMSA(dim, shifted)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.msa(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ConvTransBlock(nn.Module):
    """1x1 conv, split (conv branch first), residual 3x3-ReLU-3x3 and Swin branches, concat, 1x1 conv, + x."""

    def __init__(self, conv_dim, trans_dim, kind, input_resolution):
        super().__init__()
        assert kind in ('W', 'SW')
        if input_resolution <= WINDOW:
            kind = 'W'  # the reference's constructor-time rule
        self.kind = kind
        self.conv_dim = conv_dim
        self.trans_dim = trans_dim
        c = conv_dim + trans_dim
        self.trans_block = Block(trans_dim, kind == 'SW')
        self.conv1_1 = nn.Conv2d(c, c, 1, 1, 0, bias=True)
        self.conv1_2 = nn.Conv2d(c, c, 1, 1, 0, bias=True)
        self.conv_block = nn.Sequential(
            nn.Conv2d(conv_dim, conv_dim, 3, 1, 1, bias=False),
            nn.ReLU(True),
            nn.Conv2d(conv_dim, conv_dim, 3, 1, 1, bias=False),
        )

    def forward(self, x):
        conv_x, trans_x = torch.split(self.conv1_1(x), (self.conv_dim, self.trans_dim), dim=1)
        conv_x = self.conv_block(conv_x) + conv_x
        trans_x = self.trans_block(trans_x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.conv1_2(torch.cat((conv_x, trans_x), dim=1))


def _stage(width, blocks, resolution):
    """`blocks` ConvTransBlocks of `width` channels (half conv, half Swin), W for even index, SW for odd."""
    return [ConvTransBlock(width // 2, width // 2, 'W' if i % 2 == 0 else 'SW', resolution) for i in range(blocks)]


class SCUNet(nn.Module):
    def __init__(self, in_nc=3, config=(2, 2, 2, 2, 2, 2, 2), dim=64, input_resolution=256):
        super().__init__()
        assert len(config) == 7
        assert dim % (2 * HEAD_DIM) == 0, 'the level-1 Swin half (dim/2) must be a whole number of 32-wide heads'
        self.config = list(config)
        self.dim = dim
        r = input_resolution
        self.m_head = nn.Sequential(nn.Conv2d(in_nc, dim, 3, 1, 1, bias=False))
        self.m_down1 = nn.Sequential(*_stage(dim, config[0], r), nn.Conv2d(dim, 2 * dim, 2, 2, 0, bias=False))
        self.m_down2 = nn.Sequential(*_stage(2 * dim, config[1], r // 2), nn.Conv2d(2 * dim, 4 * dim, 2, 2, 0, bias=False))
        self.m_down3 = nn.Sequential(*_stage(4 * dim, config[2], r // 4), nn.Conv2d(4 * dim, 8 * dim, 2, 2, 0, bias=False))
        self.m_body = nn.Sequential(*_stage(8 * dim, config[3], r // 8))
        self.m_up3 = nn.Sequential(nn.ConvTranspose2d(8 * dim, 4 * dim, 2, 2, 0, bias=False), *_stage(4 * dim, config[4], r // 4))
        self.m_up2 = nn.Sequential(nn.ConvTranspose2d(4 * dim, 2 * dim, 2, 2, 0, bias=False), *_stage(2 * dim, config[5], r // 2))
        self.m_up1 = nn.Sequential(nn.ConvTranspose2d(2 * dim, dim, 2, 2, 0, bias=False), *_stage(dim, config[6], r))
        self.m_tail = nn.Sequential(nn.Conv2d(dim, in_nc, 3, 1, 1, bias=False))

    def forward(self, x0):
        h, w = x0.shape[-2:]
        pad_bottom = (-h) % 64
        pad_right = (-w) % 64
        x0 = F.pad(x0, (0, pad_right, 0, pad_bottom), mode='replicate')
        x1 = self.m_head(x0)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        x = self.m_body(x4)
        x = self.m_up3(x + x4)
        x = self.m_up2(x + x3)
        x = self.m_up1(x + x2)
        x = self.m_tail(x + x1)
        return x[..., :h, :w]
