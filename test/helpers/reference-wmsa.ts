/**
 * Float64 reference of SCUNet's WMSA attention core, written from the definition (docs/networks.md §1.6) with
 * every step materialised: roll, window partition, per-head Q/K/V, scaled scores + gathered relative bias,
 * region mask (Swin's label formulation), softmax, weighted sum, un-partition, reverse roll.
 *
 * qkv: NHWC [n, H, W, 3C] (C = nh·32, channels [Q heads | K heads | V heads]); bias [nh, 15, 15].
 * Returns NHWC [n, H, W, C].
 */
export function wmsaRef(
  qkv: ArrayLike<number>,
  shape: readonly [n: number, h: number, w: number],
  nh: number,
  bias: ArrayLike<number>,
  shifted: boolean,
): Float64Array {
  const [n, H, W] = shape;
  const ws = 8;
  const hd = 32;
  const C = nh * hd;
  const C3 = 3 * C;
  const s = shifted ? ws / 2 : 0;
  const scale = 1 / Math.sqrt(hd);
  if (qkv.length !== n * H * W * C3) throw new Error(`qkv has ${qkv.length} values, expected ${n * H * W * C3}`);

  // 1. x'[i, j] = x[(i + s) mod H, (j + s) mod W]  (torch.roll by (−s, −s)).
  const rolled = new Float64Array(n * H * W * C3);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const src = ((b * H + ((i + s) % H)) * W + ((j + s) % W)) * C3;
        const dst = ((b * H + i) * W + j) * C3;
        for (let k = 0; k < C3; k++) rolled[dst + k] = qkv[src + k];
      }
    }
  }

  // Region labels of the rolled map (Swin): slices [0, H−ws), [H−ws, H−s), [H−s, H) and the same for columns.
  const region = (v: number, size: number) => (!shifted ? 0 : v < size - ws ? 0 : v < size - s ? 1 : 2);

  const y = new Float64Array(n * H * W * C); // in rolled coordinates
  const nWh = H / ws;
  const nWw = W / ws;
  const scores = new Float64Array(64 * 64);
  for (let b = 0; b < n; b++) {
    for (let a = 0; a < nWh; a++) {
      for (let wb = 0; wb < nWw; wb++) {
        // 2. Window partition: token p = 8r + c at pixel (8a + r, 8wb + c).
        const pix: number[] = [];
        const label: number[] = [];
        for (let p = 0; p < 64; p++) {
          const i = a * ws + Math.floor(p / ws);
          const j = wb * ws + (p % ws);
          pix.push((b * H + i) * W + j);
          label.push(region(i, H) * 3 + region(j, W));
        }
        for (let h = 0; h < nh; h++) {
          // 3. Q/K/V of head h: channels h·32, C + h·32, 2C + h·32.
          const q = (p: number, d: number) => rolled[pix[p] * C3 + h * hd + d];
          const k = (p: number, d: number) => rolled[pix[p] * C3 + C + h * hd + d];
          const v = (p: number, d: number) => rolled[pix[p] * C3 + 2 * C + h * hd + d];
          for (let p = 0; p < 64; p++) {
            for (let t = 0; t < 64; t++) {
              let dot = 0;
              for (let d = 0; d < hd; d++) dot += q(p, d) * k(t, d);
              // 4. Bias gathered as params[h, r_p − r_t + 7, c_p − c_t + 7], p the query.
              const dr = Math.floor(p / ws) - Math.floor(t / ws) + 7;
              const dc = (p % ws) - (t % ws) + 7;
              let sc = dot * scale + bias[(h * 15 + dr) * 15 + dc];
              // 5. Mask: tokens from different regions do not attend to each other.
              if (label[p] !== label[t]) sc = -Infinity;
              scores[p * 64 + t] = sc;
            }
          }
          // 6. Softmax over keys and weighted sum of V; heads concatenated as h·32 + d.
          for (let p = 0; p < 64; p++) {
            let m = -Infinity;
            for (let t = 0; t < 64; t++) m = Math.max(m, scores[p * 64 + t]);
            let sum = 0;
            const e = new Float64Array(64);
            for (let t = 0; t < 64; t++) {
              e[t] = Math.exp(scores[p * 64 + t] - m);
              sum += e[t];
            }
            for (let d = 0; d < hd; d++) {
              let acc = 0;
              for (let t = 0; t < 64; t++) acc += e[t] * v(t, d);
              y[pix[p] * C + h * hd + d] = acc / sum;
            }
          }
        }
      }
    }
  }

  // 7. Reverse roll (+s, +s): out[i, j] = y[(i − s) mod H, (j − s) mod W].
  const out = new Float64Array(n * H * W * C);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const src = ((b * H + ((i - s + H) % H)) * W + ((j - s + W) % W)) * C;
        const dst = ((b * H + i) * W + j) * C;
        for (let k = 0; k < C; k++) out[dst + k] = y[src + k];
      }
    }
  }
  return out;
}
