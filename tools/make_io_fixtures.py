#!/usr/bin/env python3
"""Writes the TIFF and PNG fixtures of test/io (run with /usr/bin/python3: PIL 9.4 with libtiff, numpy).

Output: test/fixtures/io/tiff/*.tif, test/fixtures/io/alpha/*.png and one manifest each
(test/fixtures/io/tiff/expected.json, test/fixtures/io/alpha/expected.json). For every file the manifest
holds what the TypeScript reader must return: per page width, height, channels, bitDepth (8, 16 or 32 =
float32) and the samples (and alpha plane, if any) as base64 of little-endian uint8 / uint16 / float32.

Where the expected arrays come from:
- files written by PIL (its own writer, or libtiff for LZW / Deflate / PackBits / predictors): the arrays
  PIL decodes from the written file (`pil: true`);
- files PIL cannot write (tiles, planar configuration 2, big-endian compressed data, WhiteIsZero 16-bit,
  16-bit with alpha, float with alpha, 4-bit gray): written by the small independent writer below from a
  NumPy array, which is the expected result; wherever PIL can decode them too, PIL's decode is asserted to
  equal that array (`pil: true`), otherwise `pil: false`.
"""
import base64, io, json, os, struct, zlib
import numpy as np
from PIL import Image

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
TIFF_DIR = os.path.join(ROOT, 'test', 'fixtures', 'io', 'tiff')
ALPHA_DIR = os.path.join(ROOT, 'test', 'fixtures', 'io', 'alpha')
os.makedirs(TIFF_DIR, exist_ok=True)
os.makedirs(ALPHA_DIR, exist_ok=True)
rng = np.random.default_rng(20240607)


def b64(arr, bit_depth):
    dtype = {8: '<u1', 16: '<u2', 32: '<f4'}[bit_depth]
    return base64.b64encode(np.ascontiguousarray(arr).astype(dtype).tobytes()).decode('ascii')


def page(arr, bit_depth, alpha=None):
    """arr: (h, w) or (h, w, c) colour samples; alpha: (h, w) or None."""
    a = np.asarray(arr)
    h, w = a.shape[:2]
    c = 1 if a.ndim == 2 else a.shape[2]
    p = {'width': int(w), 'height': int(h), 'channels': int(c), 'bitDepth': bit_depth, 'data': b64(a, bit_depth)}
    if alpha is not None:
        p['alpha'] = b64(alpha, bit_depth)
    return p


# ------------------------------------------------------------------ independent TIFF writer
def packbits(data):
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        j = i + 1
        while j < n and j - i < 128 and data[j] == data[i]:
            j += 1
        if j - i >= 2:
            out += bytes([257 - (j - i), data[i]])
            i = j
            continue
        j = i + 1
        while j < n and j - i < 128 and not (j + 1 < n and data[j] == data[j + 1]):
            j += 1
        out += bytes([j - i - 1]) + data[i:j]
        i = j
    return bytes(out)


def lzw(data):
    """TIFF LZW as libtiff writes it: MSB-first codes, clear first, early change, clear when full."""
    out = bytearray()
    acc, nacc = 0, 0

    def put(code, width):
        nonlocal acc, nacc
        acc = (acc << width) | code
        nacc += width
        while nacc >= 8:
            nacc -= 8
            out.append((acc >> nacc) & 0xff)
        acc &= (1 << nacc) - 1

    width = 9
    table = {bytes([k]): k for k in range(256)}
    free = 258
    put(256, width)
    w = b''
    for c in data:
        wc = w + bytes([c])
        if wc in table:
            w = wc
            continue
        put(table[w], width)
        w = bytes([c])
        table[wc] = free
        free += 1
        if free == 4094:
            put(256, width)
            width = 9
            table = {bytes([k]): k for k in range(256)}
            free = 258
        elif free > (1 << width) - 1:
            width += 1
    if w:
        put(table[w], width)
        free += 1
        if free == 4094:
            put(256, width)
            width = 9
        elif free > (1 << width) - 1:
            width += 1
    put(257, width)
    if nacc:
        out.append((acc << (8 - nacc)) & 0xff)
    return bytes(out)


def predict(block, bits, spp, predictor, bo):
    """block: (rows, cols, spp) samples of one strip/tile -> encoded bytes (predictor applied)."""
    rows, cols = block.shape[:2]
    if predictor == 3:
        be = block.astype('>f4').reshape(rows, cols * spp)
        planes = be.view(np.uint8).reshape(rows, cols * spp, 4).transpose(0, 2, 1).reshape(rows, -1).astype(np.int16)
        d = planes.copy()
        d[:, spp:] = planes[:, spp:] - planes[:, :-spp]
        return (d & 0xff).astype(np.uint8).tobytes()
    if bits == 32:
        u = block.astype(np.float32).view(np.uint32)
    elif bits == 16:
        u = block.astype(np.uint16)
    else:
        u = block.astype(np.uint8)
    if predictor == 2:
        d = u.copy()
        d[:, 1:] = u[:, 1:] - u[:, :-1]
        u = d
    if bits == 32:
        return u.astype(bo + 'u4').tobytes()
    if bits == 16:
        return u.astype(bo + 'u2').tobytes()
    return u.tobytes()


def pack_bits_rows(block, bits):
    rows = []
    for r in block.reshape(block.shape[0], -1):
        v = 0
        nb = 0
        out = bytearray()
        for s in r:
            v = (v << bits) | int(s)
            nb += bits
            if nb == 8:
                out.append(v)
                v, nb = 0, 0
        if nb:
            out.append(v << (8 - nb))
        rows.append(bytes(out))
    return b''.join(rows)


def write_tiff(path, arr, bits, photometric, byteorder='<', compression=1, predictor=1, tile=None,
               rows_per_strip=None, planar=1, extra=None, colormap=None, sample_format=None):
    """arr: (h, w, spp) samples (extra samples last). Writes one page."""
    h, w, spp = arr.shape
    bo = byteorder

    def compress(raw):
        if compression == 1:
            return raw
        if compression == 8:
            return zlib.compress(raw, 6)
        if compression == 5:
            return lzw(raw)
        if compression == 32773:
            return packbits(raw)
        raise ValueError(compression)

    def encode(block):
        if bits < 8:
            return pack_bits_rows(block, bits)
        return predict(block, bits, block.shape[2], predictor, bo)

    planes = [arr[:, :, k:k + 1] for k in range(spp)] if planar == 2 else [arr]
    chunks = []
    if tile:
        tw, th = tile
        for pl in planes:
            for ty in range(0, h, th):
                for tx in range(0, w, tw):
                    t = np.zeros((th, tw, pl.shape[2]), dtype=arr.dtype)
                    sub = pl[ty:ty + th, tx:tx + tw]
                    t[:sub.shape[0], :sub.shape[1]] = sub
                    chunks.append(compress(encode(t)))
    else:
        rps = rows_per_strip or h
        for pl in planes:
            for y in range(0, h, rps):
                chunks.append(compress(encode(pl[y:y + rps])))

    entries = []  # (tag, type, values)
    entries.append((256, 4, [w]))
    entries.append((257, 4, [h]))
    entries.append((258, 3, [bits] * spp))
    entries.append((259, 3, [compression]))
    entries.append((262, 3, [photometric]))
    entries.append((273 if not tile else 324, 4, [0] * len(chunks)))
    entries.append((277, 3, [spp]))
    if not tile:
        entries.append((278, 4, [rows_per_strip or h]))
    entries.append((279 if not tile else 325, 4, [len(c) for c in chunks]))
    entries.append((284, 3, [planar]))
    if predictor != 1:
        entries.append((317, 3, [predictor]))
    if colormap is not None:
        entries.append((320, 3, list(colormap)))
    if tile:
        entries.append((322, 3, [tile[0]]))
        entries.append((323, 3, [tile[1]]))
    if extra is not None:
        entries.append((338, 3, [extra]))
    entries.append((339, 3, [sample_format or (3 if bits == 32 else 1)] * spp))
    entries.append((270, 2, 'fixture for webgpu-restore'))
    entries.sort(key=lambda e: e[0])

    # Layout: header, chunks, tag values, IFD.
    blob = bytearray(b'II*\x00' if bo == '<' else b'MM\x00*')
    blob += b'\x00\x00\x00\x00'
    offsets = []
    for c in chunks:
        offsets.append(len(blob))
        blob += c
        if len(blob) % 2:
            blob += b'\x00'
    fmt = {3: 'H', 4: 'I'}

    def value_bytes(tag, typ, vals):
        if tag in (273, 324):
            vals = offsets
        if typ == 2:
            return vals.encode('latin1') + b'\x00', len(vals) + 1
        return struct.pack(bo + fmt[typ] * len(vals), *vals), len(vals)

    values = []
    for tag, typ, vals in entries:
        data, count = value_bytes(tag, typ, vals)
        if len(data) > 4:
            at = len(blob)
            blob += data
            if len(blob) % 2:
                blob += b'\x00'
            values.append((tag, typ, count, struct.pack(bo + 'I', at)))
        else:
            values.append((tag, typ, count, data.ljust(4, b'\x00')))
    ifd = len(blob)
    blob += struct.pack(bo + 'H', len(values))
    for tag, typ, count, v in values:
        blob += struct.pack(bo + 'HHI', tag, typ, count) + v
    blob += struct.pack(bo + 'I', 0)
    blob[4:8] = struct.pack(bo + 'I', ifd)
    with open(path, 'wb') as fh:
        fh.write(bytes(blob))


# ------------------------------------------------------------------ TIFF cases
tiff_cases = {}


def pil_pages(path):
    im = Image.open(path)
    out = []
    for k in range(getattr(im, 'n_frames', 1)):
        im.seek(k)
        out.append(im.copy())
    return out


def add_tiff(name, pages, pil):
    tiff_cases[name] = {'pil': pil, 'pages': pages}


def check_pil(path, expected, convert=None):
    im = Image.open(path)
    got = np.asarray(im.convert(convert) if convert else im)
    assert got.shape == np.asarray(expected).shape, (path, got.shape, np.asarray(expected).shape)
    assert np.array_equal(got, expected), path


def save_pil(name, im, **kw):
    path = os.path.join(TIFF_DIR, name)
    im.save(path, 'TIFF', **kw)
    return path


g8 = rng.integers(0, 256, (13, 17), dtype=np.uint8)
g16 = rng.integers(0, 65536, (11, 9)).astype(np.uint16)
f32 = (rng.standard_normal((10, 12)) * 100).astype(np.float32)
f32[0, :4] = [0.0, -0.0, 1e-38, 3.4e38]
rgb8 = rng.integers(0, 256, (9, 14, 3), dtype=np.uint8)

# PIL's own writer, uncompressed.
for name, arr, mode, bd in [('gray8.tif', g8, 'L', 8), ('gray16.tif', g16, 'I;16', 16), ('float32.tif', f32, 'F', 32),
                            ('rgb8.tif', rgb8, 'RGB', 8)]:
    p = save_pil(name, Image.fromarray(arr, mode))
    got = np.asarray(Image.open(p))
    assert np.array_equal(got, arr)
    add_tiff(name, [page(got, bd)], True)

# 16-bit big endian (PIL mode I;16B).
p = save_pil('gray16_be.tif', Image.frombytes('I;16B', (9, 11), g16.astype('>u2').tobytes()))
got = np.asarray(Image.open(p)).astype(np.uint16)
assert np.array_equal(got, g16)
assert open(p, 'rb').read(2) == b'MM'
add_tiff('gray16_be.tif', [page(got, 16)], True)

# Alpha, written by PIL.
la = rng.integers(0, 256, (7, 10, 2), dtype=np.uint8)
p = save_pil('gray_alpha8.tif', Image.fromarray(la, 'LA'))
got = np.asarray(Image.open(p))
add_tiff('gray_alpha8.tif', [page(got[..., 0], 8, got[..., 1])], True)
rgba = rng.integers(0, 256, (8, 9, 4), dtype=np.uint8)
p = save_pil('rgba8_lzw.tif', Image.fromarray(rgba, 'RGBA'), compression='tiff_lzw')
got = np.asarray(Image.open(p))
assert np.array_equal(got, rgba)
add_tiff('rgba8_lzw.tif', [page(got[..., :3], 8, got[..., 3])], True)

# Compression and predictors through libtiff.
smooth = (np.add.outer(np.arange(40) * 3, np.arange(52) * 2) + rng.integers(0, 4, (40, 52))).astype(np.uint8)
smooth16 = (np.add.outer(np.arange(24) * 900, np.arange(20) * 700) + rng.integers(0, 50, (24, 20))).astype(np.uint16)
for comp, tag in [('tiff_lzw', 'lzw'), ('tiff_adobe_deflate', 'deflate'), ('packbits', 'packbits')]:
    for pred in [1, 2]:
        name = f'gray8_{tag}_pred{pred}.tif'
        p = save_pil(name, Image.fromarray(smooth), compression=comp, tiffinfo={317: pred})
        got = np.asarray(Image.open(p))
        assert np.array_equal(got, smooth)
        add_tiff(name, [page(got, 8)], True)
    name = f'gray16_{tag}_pred2.tif'
    p = save_pil(name, Image.fromarray(smooth16, 'I;16'), compression=comp, tiffinfo={317: 2})
    got = np.asarray(Image.open(p)).astype(np.uint16)
    assert np.array_equal(got, smooth16)
    add_tiff(name, [page(got, 16)], True)
for pred in [1, 3]:
    name = f'float32_deflate_pred{pred}.tif'
    p = save_pil(name, Image.fromarray(f32), compression='tiff_adobe_deflate', tiffinfo={317: pred})
    got = np.asarray(Image.open(p))
    assert np.array_equal(got, f32)
    add_tiff(name, [page(got, 32)], True)
p = save_pil('rgb8_deflate_pred2.tif', Image.fromarray(rgb8), compression='tiff_adobe_deflate', tiffinfo={317: 2})
add_tiff('rgb8_deflate_pred2.tif', [page(np.asarray(Image.open(p)), 8)], True)

# LZW long enough to reach 12-bit codes and a clear code (low-entropy random data).
lz = rng.integers(0, 12, (96, 128), dtype=np.uint8)
p = save_pil('gray8_lzw_long.tif', Image.fromarray(lz), compression='tiff_lzw')
assert np.array_equal(np.asarray(Image.open(p)), lz)
add_tiff('gray8_lzw_long.tif', [page(lz, 8)], True)

# 1-bit (PIL mode '1').
bits1 = (rng.random((9, 21)) > 0.5).astype(np.uint8) * 255
p = save_pil('bilevel.tif', Image.fromarray(bits1).convert('1'))
got = np.asarray(Image.open(p).convert('L'))
assert np.array_equal(got, bits1)
add_tiff('bilevel.tif', [page(got, 8)], True)

# Palettes written by PIL (ColorMap = value * 256).
idx = rng.integers(0, 256, (12, 16), dtype=np.uint8)
im = Image.fromarray(idx, 'P')
im.putpalette([int(v) for v in rng.integers(0, 256, 768)])
p = save_pil('palette_color.tif', im)
add_tiff('palette_color.tif', [page(np.asarray(Image.open(p).convert('RGB')), 8)], True)
im = Image.fromarray(idx, 'P')
ramp = [255 - (i // 2) for i in range(256)]  # all gray, not the identity: expanded to one channel
im.putpalette([v for g in ramp for v in (g, g, g)])
p = save_pil('palette_gray_lut.tif', im)
add_tiff('palette_gray_lut.tif', [page(np.asarray(Image.open(p).convert('L')), 8)], True)
# Zeiss-like: identity gray ramp except every ninth entry (overlay colours): the raw index is returned.
zpal = []
for i in range(256):
    if i % 9 == 0 and i > 0:
        zpal += [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]][(i // 9) % 4]
    else:
        zpal += [i, i, i]
im = Image.fromarray(idx, 'P')
im.putpalette(zpal)
p = save_pil('palette_zeiss_like.tif', im)
got = np.asarray(Image.open(p))  # PIL's array of a 'P' image is the raw index
assert np.array_equal(got, idx)
add_tiff('palette_zeiss_like.tif', [page(got, 8)], True)

# Multi-page, mixed kinds.
pages_in = [Image.fromarray(g8), Image.fromarray(f32), Image.fromarray(rgb8), Image.fromarray(g16, 'I;16')]
p = save_pil('multipage.tif', pages_in[0], save_all=True, append_images=pages_in[1:])
exp = []
for pg, bd in zip(pil_pages(p), [8, 32, 8, 16]):
    exp.append(page(np.asarray(pg), bd))
assert len(exp) == 4
add_tiff('multipage.tif', exp, True)

# Hand-written variants PIL cannot write (checked against PIL's decode where PIL reads them).
def hand(name, arr, bits, photometric, expected, expected_alpha=None, pil_expected=None, pil_convert=None, **kw):
    path = os.path.join(TIFF_DIR, name)
    a = arr if arr.ndim == 3 else arr[..., None]
    write_tiff(path, a, bits, photometric, **kw)
    pil = pil_expected is not None
    if pil:
        check_pil(path, pil_expected, pil_convert)
    add_tiff(name, [page(expected, 32 if bits == 32 else 16 if bits == 16 else 8, expected_alpha)], pil)


t8 = rng.integers(0, 256, (37, 45), dtype=np.uint8)
t16 = rng.integers(0, 65536, (21, 35)).astype(np.uint16)
hand('tiled8_deflate.tif', t8, 8, 1, t8, pil_expected=t8, compression=8, tile=(16, 16))
hand('tiled16_be_lzw_pred2.tif', t16, 16, 1, t16, byteorder='>', compression=5, predictor=2, tile=(16, 32))
hand('tiled_float_pred3.tif', f32, 32, 1, f32, pil_expected=f32, compression=8, predictor=3, tile=(16, 16))
hand('tiled_rgb8_packbits.tif', rgb8, 8, 2, rgb8, pil_expected=rgb8, compression=32773, tile=(16, 16))
hand('strips16_be_packbits.tif', t16, 16, 1, t16, byteorder='>', compression=32773, rows_per_strip=4)
hand('strips8_lzw_pred2_rps5.tif', smooth, 8, 1, smooth, pil_expected=smooth, compression=5, predictor=2, rows_per_strip=5)
hand('float_be_lzw_pred2.tif', f32, 32, 1, f32, byteorder='>', compression=5, predictor=2, rows_per_strip=3)
hand('float_be_deflate_pred3.tif', f32, 32, 1, f32, byteorder='>', compression=8, predictor=3, rows_per_strip=4)
hand('planar_rgb8.tif', rgb8, 8, 2, rgb8, pil_expected=rgb8, planar=2, rows_per_strip=4)
rgb16 = rng.integers(0, 65536, (10, 11, 3)).astype(np.uint16)
hand('planar_rgb16_deflate_pred2.tif', rgb16, 16, 2, rgb16, compression=8, predictor=2, planar=2, rows_per_strip=3)
a16 = rng.integers(0, 65536, (6, 7, 4)).astype(np.uint16)
hand('rgba16_deflate_pred2.tif', a16, 16, 2, a16[..., :3], a16[..., 3], compression=8, predictor=2, extra=2)
fa = (rng.random((5, 6, 2)) * 2 - 0.5).astype(np.float32)
hand('gray_alpha_float.tif', fa, 32, 1, fa[..., 0], fa[..., 1], extra=2)
hand('white_is_zero8.tif', t8, 8, 0, 255 - t8, pil_expected=255 - t8)
hand('white_is_zero16.tif', t16, 16, 0, 65535 - t16)
g4 = rng.integers(0, 16, (7, 9), dtype=np.uint8)
hand('gray4.tif', g4, 4, 1, g4 * 17, pil_expected=g4 * 17)

with open(os.path.join(TIFF_DIR, 'expected.json'), 'w') as fh:
    json.dump(tiff_cases, fh, indent=0)
    fh.write('\n')


# ------------------------------------------------------------------ PNG with alpha
png_cases = {}


def png_chunk(t, data):
    return struct.pack('>I', len(data)) + t + data + struct.pack('>I', zlib.crc32(t + data) & 0xffffffff)


def write_png16(path, arr, color_type):
    h, w, ns = arr.shape
    raw = b''.join(b'\x00' + arr[y].astype('>u2').tobytes() for y in range(h))
    ihdr = struct.pack('>IIBBBBB', w, h, 16, color_type, 0, 0, 0)
    with open(path, 'wb') as fh:
        fh.write(b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', ihdr) + png_chunk(b'IDAT', zlib.compress(raw)) +
                 png_chunk(b'IEND', b''))


la8 = rng.integers(0, 256, (6, 7, 2), dtype=np.uint8)
Image.fromarray(la8, 'LA').save(os.path.join(ALPHA_DIR, 'la8.png'))
got = np.asarray(Image.open(os.path.join(ALPHA_DIR, 'la8.png')))
png_cases['la8.png'] = {'pil': True, 'pages': [page(got[..., 0], 8, got[..., 1])]}
rgba8 = rng.integers(0, 256, (5, 8, 4), dtype=np.uint8)
Image.fromarray(rgba8, 'RGBA').save(os.path.join(ALPHA_DIR, 'rgba8.png'))
got = np.asarray(Image.open(os.path.join(ALPHA_DIR, 'rgba8.png')))
png_cases['rgba8.png'] = {'pil': True, 'pages': [page(got[..., :3], 8, got[..., 3])]}
pidx = rng.integers(0, 6, (4, 9), dtype=np.uint8)
im = Image.fromarray(pidx, 'P')
im.putpalette([int(v) for v in rng.integers(0, 256, 18)])
im.info['transparency'] = bytes([0, 60, 255, 128])  # entries 4 and 5 opaque
im.save(os.path.join(ALPHA_DIR, 'palette_trns.png'), transparency=bytes([0, 60, 255, 128]))
got = np.asarray(Image.open(os.path.join(ALPHA_DIR, 'palette_trns.png')).convert('RGBA'))
png_cases['palette_trns.png'] = {'pil': True, 'pages': [page(got[..., :3], 8, got[..., 3])]}
la16 = rng.integers(0, 65536, (5, 6, 2)).astype(np.uint16)
write_png16(os.path.join(ALPHA_DIR, 'la16.png'), la16, 4)
png_cases['la16.png'] = {'pil': False, 'pages': [page(la16[..., 0], 16, la16[..., 1])]}
rgba16 = rng.integers(0, 65536, (4, 5, 4)).astype(np.uint16)
write_png16(os.path.join(ALPHA_DIR, 'rgba16.png'), rgba16, 6)
png_cases['rgba16.png'] = {'pil': False, 'pages': [page(rgba16[..., :3], 16, rgba16[..., 3])]}

with open(os.path.join(ALPHA_DIR, 'expected.json'), 'w') as fh:
    json.dump(png_cases, fh, indent=0)
    fh.write('\n')

# ------------------------------------------------------------------ RGB -> L as PIL computes it
rgb_l = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
rgb_l[0, :6] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [1, 2, 3], [128, 128, 128]]
lum = np.asarray(Image.fromarray(rgb_l).convert('L'))
with open(os.path.join(ROOT, 'test', 'fixtures', 'io', 'pil-luma.json'), 'w') as fh:
    json.dump({'rgb': b64(rgb_l, 8), 'gray': b64(lum, 8), 'width': 16, 'height': 16}, fh)
    fh.write('\n')

# ------------------------------------------------------------------ NumPy percentiles and CSBDeep normalisation
pct = {'ps': [0, 1, 2.5, 37.3, 50, 99.8, 100], 'arrays': []}
for arr in [rng.standard_normal(1000).astype(np.float32), np.array([3.0], np.float32),
            np.array([5, 1], np.float32), rng.integers(0, 7, 101).astype(np.float32),
            (rng.random(777) * 1e4).astype(np.float32)]:
    pct['arrays'].append({'values': b64(arr, 32), 'expected': [float(np.percentile(arr, p)) for p in pct['ps']]})
img = (rng.random((3, 9, 11)) * 3 - 1).astype(np.float32)  # planar CHW
mi = np.percentile(img, 1, axis=(1, 2), keepdims=True)
ma = np.percentile(img, 99.8, axis=(1, 2), keepdims=True)
# csbdeep.utils.normalize_mi_ma with dtype float32
norm = (img - mi.astype(np.float32)) / (ma.astype(np.float32) - mi.astype(np.float32) + np.float32(1e-20))
pct['csbdeep'] = {'width': 11, 'height': 9, 'channels': 3, 'data': b64(img, 32), 'normalized': b64(norm.astype(np.float32), 32),
                  'low': [float(v) for v in mi.ravel()], 'high': [float(v) for v in ma.ravel()]}
with open(os.path.join(ROOT, 'test', 'fixtures', 'io', 'percentile.json'), 'w') as fh:
    json.dump(pct, fh)
    fh.write('\n')

# ------------------------------------------------------------------ the Zeiss SEM files as PIL reads them
import hashlib
ZEISS = os.path.normpath(os.path.join(ROOT, '..', 'shared', 'data', 'sem', 'zeiss-with-databar'))
zeiss = {}
for f in sorted(os.listdir(ZEISS)):
    im = Image.open(os.path.join(ZEISS, f))
    idx = np.asarray(im)  # mode 'P': the raw palette indices
    zeiss[f] = {'width': im.size[0], 'height': im.size[1], 'mode': im.mode,
                'sha256': hashlib.sha256(idx.tobytes()).hexdigest(),
                'sum': int(idx.astype(np.int64).sum()),
                'colormap': [int(v) for v in im.tag_v2[320]][:30],
                'czSemLength': len(im.tag_v2[34118])}
with open(os.path.join(ROOT, 'test', 'fixtures', 'io', 'zeiss.json'), 'w') as fh:
    json.dump(zeiss, fh, indent=1)
    fh.write('\n')

sizes = sum(os.path.getsize(os.path.join(d, f)) for d in (TIFF_DIR, ALPHA_DIR) for f in os.listdir(d))
print(f'{len(tiff_cases)} TIFF and {len(png_cases)} PNG cases, {sizes} bytes')
