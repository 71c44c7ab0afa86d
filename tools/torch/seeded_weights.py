"""Seeded pseudo-random weights that TypeScript can regenerate bit-for-bit (test/helpers/seeded-weights.ts).

Why: full-size networks (SCUNet has 18M parameters) are too large to commit as fixtures. A fixture therefore
stores only the state_dict's key/shape manifest, the seed, the input and PyTorch's output; the test rebuilds
the identical weights from the seed. Both sides use the same 32-bit integer hash (lowbias32) and the same
float64 arithmetic, then round to float32, so the tensors are identical, not merely close.

Value rules (shared with the TypeScript twin; keep them in step):
  running_var              U[0.5, 1.5)
  running_mean             U[-0.2, 0.2)
  num_batches_tracked      0 (int64)
  1-D '...weight'          U[0.8, 1.2)      (norm affine scales, PReLU slopes)
  1-D other ('...bias')    U[-0.1, 0.1)
  n-D (n >= 2)             U[-b, b), b = sqrt(3 / prod(shape[1:]))   (unit-variance fan-in scaling)
"""

import numpy as np
import torch

MASK = 0xFFFFFFFF


def fnv1a32(text):
    h = 0x811C9DC5
    for byte in text.encode('utf-8'):
        h ^= byte
        h = (h * 0x01000193) & MASK
    return h


def lowbias32(x):
    """x: numpy uint32 array. Wrapping uint32 arithmetic, same as Math.imul/>>> in JS."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    x = x ^ (x >> np.uint32(16))
    return x


def uniform01(seed, key, n):
    """n float64 values in [0, 1) for tensor `key`."""
    key_seed = np.uint32(fnv1a32('%d:%s' % (seed, key)))
    i = np.arange(n, dtype=np.uint32)
    with np.errstate(over='ignore'):
        h = lowbias32(i * np.uint32(0x9E3779B9) + key_seed)
    return h.astype(np.float64) / 4294967296.0


def value_range(key, shape):
    """(lo, hi) for a float tensor, or None for an integer counter."""
    name = key.rsplit('.', 1)[-1]
    if name == 'num_batches_tracked':
        return None
    if name == 'running_var':
        return (0.5, 1.5)
    if name == 'running_mean':
        return (-0.2, 0.2)
    if len(shape) <= 1:
        return (0.8, 1.2) if name == 'weight' else (-0.1, 0.1)
    fan_in = int(np.prod(shape[1:]))
    b = float(np.sqrt(3.0 / fan_in))
    return (-b, b)


def seeded_tensor(seed, key, shape):
    shape = list(shape)
    r = value_range(key, shape)
    if r is None:
        return torch.zeros(shape, dtype=torch.int64)
    lo, hi = r
    u = uniform01(seed, key, int(np.prod(shape)) if shape else 1)
    v = (lo + (hi - lo) * u).astype(np.float32)
    return torch.from_numpy(v.reshape(shape))


def fill_module(module, seed):
    """Overwrite every entry of module.state_dict() in place with seeded values; returns the manifest."""
    sd = module.state_dict()
    manifest = []
    with torch.no_grad():
        for key, t in sd.items():
            new = seeded_tensor(seed, key, list(t.shape))
            t.copy_(new.to(t.dtype))
            manifest.append({'key': key, 'shape': list(t.shape), 'dtype': str(t.dtype).replace('torch.', '')})
    return manifest
