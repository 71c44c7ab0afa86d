/**
 * `--enable-unsafe-webgpu` turns WebGPU on for Linux; with `--disable-gpu` Chromium then gives SwiftShader's
 * Vulkan device as the adapter (no other flag needed with Chromium 156). The rest keep the browser off the
 * network and quiet. Shared by the page tests (test/browser/chromium.ts) and vitest's browser project.
 */
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
