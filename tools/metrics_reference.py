#!/usr/bin/env python3
"""Float64 NumPy references for PSNR and SSIM, and the fixtures in test/fixtures/metrics/ built from them.

scikit-image and OpenCV are not installed here, so both reference formulas are written out in NumPy:

- `ssim_skimage`: skimage.metrics.structural_similarity(im1, im2, data_range=R, gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False[, channel_axis=-1]) step by step: images as float64; each of
  ux, uy, uxx, uyy, uxy filtered with scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5,
  mode='reflect') (separable correlation, axis 0 then axis 1, 'reflect' = np.pad 'symmetric'), the SSIM map
  S = (2 ux uy + C1)(2 vxy + C2) / ((ux² + uy² + C1)(vx + vy + C2)) with v = u.. − u u, C1 = (0.01 R)²,
  C2 = (0.03 R)², then crop((win_size − 1) // 2 = 5) and the float64 mean; the channel mean for colour.
- `ssim_kair`: KAIR utils_image.calculate_ssim / ssim: float64, window = outer(g, g) with
  g = cv2.getGaussianKernel(11, 1.5), mu = filter2D(img, window)[5:-5, 5:-5] (the 'valid' part, written
  here as a direct 2-D correlation over the 121 offsets), the same map and mean; RGB = mean over channels.
  KAIR fixes R = 255; here R is a parameter so 16-bit and float pairs can be checked the same way.
- `psnr_skimage` = 10 log10(R² / mse) and `psnr_kair` = 20 log10(R / sqrt(mse)), mse in float64.

Run: /usr/bin/python3 tools/metrics_reference.py  (writes test/fixtures/metrics/cases.json)
"""
import base64, json, os
import numpy as np
from PIL import Image

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'metrics')
SET12 = os.path.normpath(os.path.join(ROOT, '..', 'shared', 'data', 'set12'))


def gaussian_1d(sigma=1.5, truncate=3.5):
    """scipy.ndimage._gaussian_kernel1d (order 0)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    return phi / phi.sum()


def correlate1d_reflect(a, w, axis):
    r = (len(w) - 1) // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    p = np.pad(a, pad, mode='symmetric')  # scipy 'reflect': d c b a | a b c d | d c b a
    out = np.zeros_like(a, dtype=np.float64)
    n = a.shape[axis]
    for k, wk in enumerate(w):
        sl = [slice(None)] * a.ndim
        sl[axis] = slice(k, k + n)
        out += wk * p[tuple(sl)]
    return out


def gaussian_filter(a, sigma=1.5):
    w = gaussian_1d(sigma)
    out = a.astype(np.float64)
    for axis in range(a.ndim):
        out = correlate1d_reflect(out, w, axis)
    return out


def ssim_skimage_2d(im1, im2, data_range, sigma=1.5, k1=0.01, k2=0.03):
    im1 = im1.astype(np.float64)
    im2 = im2.astype(np.float64)
    truncate = 3.5
    r = int(truncate * sigma + 0.5)
    win_size = 2 * r + 1
    ux = gaussian_filter(im1, sigma)
    uy = gaussian_filter(im2, sigma)
    uxx = gaussian_filter(im1 * im1, sigma)
    uyy = gaussian_filter(im2 * im2, sigma)
    uxy = gaussian_filter(im1 * im2, sigma)
    cov_norm = 1.0  # use_sample_covariance=False
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    a1, a2, b1, b2 = (2 * ux * uy + c1, 2 * vxy + c2, ux ** 2 + uy ** 2 + c1, vx + vy + c2)
    s = (a1 * a2) / (b1 * b2)
    pad = (win_size - 1) // 2
    return s[pad:-pad, pad:-pad].mean(dtype=np.float64)


def ssim_skimage(im1, im2, data_range):
    if im1.ndim == 3:
        return float(np.mean([ssim_skimage_2d(im1[..., c], im2[..., c], data_range) for c in range(im1.shape[2])]))
    return float(ssim_skimage_2d(im1, im2, data_range))


def get_gaussian_kernel(ksize=11, sigma=1.5):
    """cv2.getGaussianKernel for ksize > 7: exp(-x²/(2σ²)) at x = i - (ksize-1)/2, normalised."""
    x = np.arange(ksize) - (ksize - 1) * 0.5
    t = np.exp(-0.5 / (sigma * sigma) * x * x)
    return (t / t.sum()).reshape(-1, 1)


def filter2d_valid(img, window):
    kh, kw = window.shape
    h, w = img.shape
    out = np.zeros((h - kh + 1, w - kw + 1))
    for i in range(kh):
        for j in range(kw):
            out += window[i, j] * img[i:i + h - kh + 1, j:j + w - kw + 1]
    return out


def ssim_kair_2d(img1, img2, data_range=255.0):
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    img1 = img1.astype(np.float64)
    img2 = img2.astype(np.float64)
    kernel = get_gaussian_kernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())
    mu1 = filter2d_valid(img1, window)
    mu2 = filter2d_valid(img2, window)
    mu1_sq = mu1 ** 2
    mu2_sq = mu2 ** 2
    mu1_mu2 = mu1 * mu2
    sigma1_sq = filter2d_valid(img1 ** 2, window) - mu1_sq
    sigma2_sq = filter2d_valid(img2 ** 2, window) - mu2_sq
    sigma12 = filter2d_valid(img1 * img2, window) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return ssim_map.mean()


def ssim_kair(img1, img2, data_range=255.0):
    if img1.ndim == 3:
        return float(np.array([ssim_kair_2d(img1[..., i], img2[..., i], data_range) for i in range(img1.shape[2])]).mean())
    return float(ssim_kair_2d(img1, img2, data_range))


def psnr_skimage(a, b, data_range):
    err = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, dtype=np.float64)
    return float(10 * np.log10((data_range ** 2) / err))


def psnr_kair(a, b, data_range=255.0):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(20 * np.log10(data_range / np.sqrt(mse)))


def b64(arr):
    dtype = {np.dtype(np.uint8): '<u1', np.dtype(np.uint16): '<u2', np.dtype(np.float32): '<f4'}[arr.dtype]
    return base64.b64encode(np.ascontiguousarray(arr).astype(dtype).tobytes()).decode('ascii')


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    cases = []

    def add(name, a, b, data_range, kind):
        h, w = a.shape[:2]
        c = 1 if a.ndim == 2 else a.shape[2]
        sk = ssim_skimage(a, b, data_range)
        ka = ssim_kair(a, b, data_range)
        assert abs(sk - ka) < 1e-12, (name, sk, ka)  # the two formulas agree on the valid region
        cases.append({
            'name': name, 'kind': kind, 'width': w, 'height': h, 'channels': c, 'dataRange': data_range,
            'a': b64(a), 'b': b64(b),
            'psnrSkimage': psnr_skimage(a, b, data_range), 'psnrKair': psnr_kair(a, b, data_range),
            'ssimSkimage': sk, 'ssimKair': ka,
        })

    # Real image: a Set12 crop and a noisy copy (σ = 25, rounded to 8 bits).
    clean = np.asarray(Image.open(os.path.join(SET12, '01.png')))[100:164, 60:124]
    noisy = np.clip(np.round(clean + rng.normal(0, 25, clean.shape)), 0, 255).astype(np.uint8)
    add('set12-01-crop-noisy25', clean, noisy, 255, 'u8')
    # Smooth synthetic gray pair, odd size.
    yy, xx = np.mgrid[0:37, 0:45]
    base = (120 + 80 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.float64)
    a = np.clip(np.round(base), 0, 255).astype(np.uint8)
    b = np.clip(np.round(base + rng.normal(0, 8, base.shape)), 0, 255).astype(np.uint8)
    add('synthetic-gray8', a, b, 255, 'u8')
    # RGB 8-bit.
    a3 = rng.integers(0, 256, (29, 33, 3), dtype=np.uint8)
    b3 = np.clip(a3.astype(int) + rng.integers(-20, 21, a3.shape), 0, 255).astype(np.uint8)
    add('random-rgb8', a3, b3, 255, 'u8')
    # 16-bit gray.
    a16 = (np.clip(base * 250 + rng.normal(0, 300, base.shape), 0, 65535)).astype(np.uint16)[:24, :32]
    b16 = (np.clip(a16.astype(float) + rng.normal(0, 1500, a16.shape), 0, 65535)).astype(np.uint16)
    add('gray16', a16, b16, 65535, 'u16')
    # Float32 gray in [0, 1] (planar float image on the TypeScript side), data_range 1.
    af = (base / 255).astype(np.float32)[:30, :40]
    bf = (af + rng.normal(0, 0.05, af.shape)).astype(np.float32)
    add('float32-gray', af, bf, 1.0, 'f32')
    # Float32 RGB, data_range 2 (values in [-1, 1]).
    ar = (rng.random((20, 22, 3)) * 2 - 1).astype(np.float32)
    br = (ar + rng.normal(0, 0.1, ar.shape)).astype(np.float32)
    add('float32-rgb-range2', ar, br, 2.0, 'f32')
    # The smallest image the window fits: one valid pixel.
    s1 = rng.integers(0, 256, (11, 11), dtype=np.uint8)
    s2 = rng.integers(0, 256, (11, 11), dtype=np.uint8)
    add('window-sized-11x11', s1, s2, 255, 'u8')
    # Constant images (variance terms zero; C1, C2 keep it finite).
    add('constant', np.full((16, 16), 100, np.uint8), np.full((16, 16), 110, np.uint8), 255, 'u8')

    with open(os.path.join(OUT, 'cases.json'), 'w') as fh:
        json.dump({'cases': cases}, fh, indent=0)
        fh.write('\n')
    for c in cases:
        print(f"{c['name']:24s} psnr {c['psnrSkimage']:.6f} ssim {c['ssimSkimage']:.8f} (KAIR {c['ssimKair']:.8f})")


if __name__ == '__main__':
    main()
