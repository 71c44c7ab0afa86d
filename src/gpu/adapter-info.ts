/** A serialisable description of the adapter, printed by the CLI and recorded with every benchmark. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations (lavapipe, SwiftShader, WARP): kernel variants are chosen differently there. */
  isSoftware: boolean;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|warp|software|cpu/i;

export function describeAdapter(adapter: GPUAdapter | undefined, info?: GPUAdapterInfo): AdapterDescription {
  const i = info ?? adapter?.info;
  const vendor = i?.vendor ?? '';
  const architecture = i?.architecture ?? '';
  const device = i?.device ?? '';
  const description = i?.description ?? '';
  const all = `${vendor} ${architecture} ${device} ${description}`;
  return { vendor, architecture, device, description, isSoftware: SOFTWARE_NAMES.test(all) };
}

export function adapterLabel(d: AdapterDescription): string {
  const parts = [d.description || d.device, d.vendor, d.architecture].filter((s) => s.length > 0);
  const label = parts.length > 0 ? parts.join(' / ') : 'unknown adapter';
  return d.isSoftware ? `${label} (software)` : label;
}
