/**
 * Every public function, called with arguments of the wrong type (null, undefined, numbers, strings, wrong
 * objects), fails with InvalidInputError (code INVALID_INPUT) naming the argument: never a raw TypeError, never
 * a silent result. The checks come before any GPU work, so this file never loads Dawn (checked at the end).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRunOptions } from '../src/runtime/check-run-options';
import * as lib from '../src/node';
import type { GPUContext } from '../src/gpu/context';
import type { Network } from '../src/models/network';

/** The wrong values tried for every argument, by label; a row lists the labels that are valid there. */
const WRONG: Record<string, () => unknown> = {
  null: () => null,
  undefined: () => undefined,
  '42': () => 42,
  NaN: () => Number.NaN,
  "'str'": () => 'str',
  '{}': () => ({}),
  '[]': () => [],
  true: () => true,
  function: () => () => 0,
};

type Label = keyof typeof WRONG;

interface Row {
  /** `fn(arg)` as the test names it. */
  name: string;
  call: (value: unknown) => unknown;
  /** Labels of values of the right type here (a valid call would go on to real work). */
  valid?: Label[];
  /** What the message must mention (default: the argument's name from `name`). */
  mentions?: RegExp;
}

const image8 = () => ({ width: 2, height: 2, channels: 1 as const, bitDepth: 8 as const, data: Uint8Array.of(1, 2, 3, 4) });
const floatImage = () => ({ width: 2, height: 2, channels: 1, data: new Float32Array(4) });
const pngBytes = lib.encodePng(image8());
const noArgs = ['{}'] as Label[]; // an empty options object is valid everywhere options are
const UNDEF_OR_EMPTY: Label[] = ['undefined', '{}'];

/** A stand-in context that fails the test if anything touches it: validation must come before GPU work. */
const untouchableContext = new Proxy(
  {},
  {
    get(_, key) {
      throw new Error(`the GPU context was used (${String(key)}) before the arguments were checked`);
    },
  },
) as GPUContext;
const fakeNetwork = { architecture: 'DnCNN', inChannels: 1, outChannels: 1, scale: 1 } as unknown as Network;
const model = new lib.RestorationModel(untouchableContext, fakeNetwork, 'fake');

/** Rows for `fn(options)` and each typed option field `fn({ field: value })`. */
const isOptions = (o: unknown): o is object => typeof o === 'object' && o !== null && !Array.isArray(o);

function optionRows(
  fn: string,
  call: (options: unknown) => unknown,
  fields: Record<string, Label[]>,
  optionsValid: Label[] = UNDEF_OR_EMPTY,
): Row[] {
  const rows: Row[] = [{ name: `${fn}(options)`, call, valid: optionsValid }];
  for (const [field, valid] of Object.entries(fields)) {
    rows.push({ name: `${fn}(options.${field})`, call: (v) => call({ [field]: v }), valid: ['undefined', ...valid] });
  }
  return rows;
}

const RUN_FIELDS: Record<string, Label[]> = {
  tileSize: ['42'],
  maxActivationBytes: ['42'],
  onProgress: ['function'],
  signal: [],
  normalize: [],
  context: [],
  device: [],
  model: [],
};

/** Passes `instanceof GPUContext` and nothing more: training's checks must refuse before using it. */
const contextShell = Object.create(lib.GPUContext.prototype) as GPUContext;
const trainable = new lib.DnCNN({ inChannels: 1, outChannels: 1, nc: 4, nb: 3, actMode: 'R' });
const trainOptions = { batchShape: [1, 1, 8, 8], loss: { kind: 'mse' }, optimizer: { kind: 'adam' } };
/** Options with one field replaced (non-objects passed as they are, to test the options argument itself). */
const withTrainOption = (o: unknown) => (typeof o === 'object' && o !== null && !Array.isArray(o) ? { ...trainOptions, ...o } : o);

const ganOptions = { batchShape: [1, 1, 8, 8], generator: { optimizer: { kind: 'adam' } }, discriminator: { optimizer: { kind: 'adam' } } };
const judge = new lib.PatchGANDiscriminator({ inChannels: 1, ndf: 4, nLayers: 1 });

const ROWS: Row[] = [
  // GAN training
  { name: 'GanTrainer.create(ctx)', call: (v) => lib.GanTrainer.create(v as never, trainable, judge, ganOptions as never) },
  { name: 'GanTrainer.create(generator)', call: (v) => lib.GanTrainer.create(contextShell, v as never, judge, ganOptions as never) },
  {
    name: 'GanTrainer.create(discriminator)',
    call: (v) => lib.GanTrainer.create(contextShell, trainable, v as never, ganOptions as never),
  },
  { name: 'GanTrainer.create(options)', call: (v) => lib.GanTrainer.create(contextShell, trainable, judge, v as never), valid: ['{}'] },
  // feature networks and LPIPS
  { name: 'loadFeatureNetwork(sd)', call: (v) => lib.loadFeatureNetwork(v as never) },
  { name: 'Lpips.fromCheckpoints(ctx)', call: (v) => lib.Lpips.fromCheckpoints(v as never, new Uint8Array(4), new Uint8Array(4)) },
  { name: 'Lpips.fromCheckpoints(backbone)', call: (v) => lib.Lpips.fromCheckpoints(contextShell, v as never, new Uint8Array(4)) },
  { name: 'Lpips.fromCheckpoints(heads)', call: (v) => lib.Lpips.fromCheckpoints(contextShell, new Uint8Array(4), v as never) },
  { name: 'Lpips.fromStateDicts(backbone)', call: (v) => lib.Lpips.fromStateDicts(contextShell, v as never, new Map()) },
  { name: 'lpips(model)', call: (v) => lib.lpips(v as never, image8(), image8()) },
  // training
  { name: 'Trainer.create(ctx)', call: (v) => lib.Trainer.create(v as never, trainable, trainOptions as never) },
  { name: 'Trainer.create(model)', call: (v) => lib.Trainer.create(contextShell, v as never, trainOptions as never) },
  ...optionRows(
    'Trainer.create',
    (o) => lib.Trainer.create(contextShell, trainable, withTrainOption(o) as never),
    {
      batchShape: [],
      loss: ['{}', '[]'],
      optimizer: ['{}', '[]'],
      clipGradNorm: ['42'],
      batchNorm: [],
      frozen: ['function'],
      parameterGroups: ['[]'],
      returnOutput: ['true'],
      selfSupervised: ['{}', '[]'],
    },
    ['{}'],
  ),
  { name: 'fineTune(ctx)', call: (v) => lib.fineTune(v as never, trainable, [], { method: 'n2v' }) },
  { name: 'fineTune(model)', call: (v) => lib.fineTune(contextShell, v as never, [], { method: 'n2v' }) },
  { name: 'fineTune(images)', call: (v) => lib.fineTune(contextShell, trainable, v as never, { method: 'n2v' }), valid: ['[]'] },
  ...optionRows(
    'fineTune',
    // A method unless the row tries one, so each field's own check is what fails.
    (o) => lib.fineTune(contextShell, trainable, [], (isOptions(o) && !('method' in o) ? { method: 'n2v', ...o } : o) as never),
    {
      method: [],
      percentage: ['42'],
      roiSize: ['42'],
      struct: ['{}', '[]'],
      increaseRatio: ['42'],
      patch: ['42'],
      batch: ['42'],
      steps: ['42'],
      maxSeconds: ['42'],
      optimizer: ['{}', '[]'],
      validationFraction: ['42'],
      validations: ['42'],
      normalize: ['{}', '[]'],
      batchNorm: [],
      seed: ['42'],
      onProgress: ['function'],
      signal: [],
    },
    ['{}'],
  ),
  { name: 'trainedStateToPth(state)', call: (v) => lib.trainedStateToPth(v as never) },
  { name: 'initializeParameters(model)', call: (v) => lib.initializeParameters(v as never, 0) },
  { name: 'initializeParameters(seed)', call: (v) => lib.initializeParameters(trainable, v as never), valid: ['42'] },
  { name: 'parseNoiseModel(text)', call: (v) => lib.parseNoiseModel(v as never), valid: ["'str'"] },
  // api.ts
  { name: 'denoise(image)', call: (v) => lib.denoise(v as never) },
  ...optionRows('denoise', (o) => lib.denoise(image8(), o as never), { ...RUN_FIELDS, weights: ["'str'"], builtin: [] }),
  { name: 'denoise(float image)', call: (v) => lib.denoise({ ...floatImage(), data: v } as never), mentions: /image\.data/ },
  { name: 'upscale(image)', call: (v) => lib.upscale(v as never, {}) },
  ...optionRows('upscale', (o) => lib.upscale(image8(), o as never), { ...RUN_FIELDS, scale: ['42'] }, []).map((row) =>
    // Without options upscale says what it needs (a model or weights) rather than "options must be …".
    row.name === 'upscale(options)' ? { ...row, mentions: /options|model|weights/ } : row,
  ),
  { name: 'loadModel(weights)', call: (v) => lib.loadModel(v as never), valid: ["'str'"] },
  ...optionRows('loadModel', (o) => lib.loadModel(new Uint8Array(8), o as never), {
    name: ["'str'"],
    architecture: [],
    context: [],
    device: [],
  }),
  { name: 'loadBuiltinModel(name)', call: (v) => lib.loadBuiltinModel(v as never), valid: ['undefined'], mentions: /built-in model/ },
  ...optionRows('loadBuiltinModel', (o) => lib.loadBuiltinModel('dncnn_25', o as never), { context: [], device: [] }).map((row) => ({
    ...row,
    name: row.name.replace('options', 'choice'),
  })),
  // node.ts, gpu/
  { name: 'builtinWeightsPath(name)', call: (v) => lib.builtinWeightsPath(v as never) },
  { name: 'readImageFile(path)', call: (v) => lib.readImageFile(v as never), valid: ["'str'"] },
  ...optionRows('readImageFile', (o) => lib.readImageFile('x.png', o as never), { page: ['42'], name: ["'str'"], palette: [] }),
  { name: 'readImageFilePages(path)', call: (v) => lib.readImageFilePages(v as never), valid: ["'str'"] },
  ...optionRows('readImageFilePages', (o) => lib.readImageFilePages('x.png', o as never), { page: ['42'] }),
  { name: 'writeImageFile(path)', call: (v) => lib.writeImageFile(v as never, image8()), valid: ["'str'"] },
  { name: 'writeImageFile(image)', call: (v) => lib.writeImageFile('/nonexistent/x.png', v as never), valid: ['[]'] },
  ...optionRows('writeImageFile', (o) => lib.writeImageFile('/nonexistent/x.png', image8(), o as never), {
    format: [],
    compression: [],
    level: [],
  }),
  ...optionRows('createNodeContext', (o) => lib.createNodeContext(o as never), {
    dawnFlags: ['[]'],
    powerPreference: [],
    debug: ['true'],
    timestamps: ['true'],
  }),
  { name: 'nodeGPU(flags)', call: (v) => lib.nodeGPU(v as never), valid: ['undefined', '[]'] },
  // Left out, the GPU object means "no WebGPU here" (GPU_UNAVAILABLE, as for a missing navigator.gpu).
  { name: 'requestContext(gpu)', call: (v) => lib.requestContext(v as never), valid: ['undefined', 'null'] },
  ...optionRows('requestContext', (o) => lib.requestContext({ requestAdapter: () => null } as never, o as never), {
    powerPreference: [],
    debug: ['true'],
  }),
  { name: 'GPUContext(device)', call: (v) => new lib.GPUContext(v as never) },
  ...optionRows('GPUContext', (o) => new lib.GPUContext({ createBuffer() {}, addEventListener() {} } as never, o as never), {
    debug: ['true'],
    adapter: [],
  }),
  // A model's run methods (their images; the options are checked by denoise/upscale above).
  { name: 'model.run(image)', call: (v) => model.run(v as never) },
  { name: 'model.runFloat(image)', call: (v) => model.runFloat(v as never) },
  // io/image
  { name: 'maxValue(bitDepth)', call: (v) => lib.maxValue(v as never) },
  { name: 'isAnyRaster(img)', call: (v) => lib.isAnyRaster(v as never), valid: noArgs },
  { name: 'roundHalfEven(x)', call: (v) => lib.roundHalfEven(v as never), valid: ['42'] },
  { name: 'convertAlpha(alpha)', call: (v) => lib.convertAlpha(v as never, 8, 16) },
  { name: 'convertAlpha(from)', call: (v) => lib.convertAlpha(new Uint8Array(1), v as never, 16) },
  { name: 'copyAlpha(source)', call: (v) => lib.copyAlpha(v as never, image8()) },
  { name: 'copyAlpha(target)', call: (v) => lib.copyAlpha(image8(), v as never) },
  { name: 'withoutAlpha(img)', call: (v) => lib.withoutAlpha(v as never) },
  { name: 'toGray(image)', call: (v) => lib.toGray(v as never) },
  { name: 'toRgb(image)', call: (v) => lib.toRgb(v as never) },
  { name: 'conformChannels(image)', call: (v) => lib.conformChannels(v as never, 3) },
  { name: 'conformChannels(channels)', call: (v) => lib.conformChannels(image8(), v as never), valid: ['42'] },
  { name: 'rasterToFloat(image)', call: (v) => lib.rasterToFloat(v as never) },
  { name: 'floatToRaster(image)', call: (v) => lib.floatToRaster(v as never, 8) },
  { name: 'validateRaster(img)', call: (v) => lib.validateRaster(v as never), mentions: /image/ },
  { name: 'validateFloat(img)', call: (v) => lib.validateFloat(v as never), mentions: /image/ },
  // io/png, io/tiff, io/formats
  { name: 'isPng(bytes)', call: (v) => lib.isPng(v as never) },
  { name: 'describeImageBytes(bytes)', call: (v) => lib.describeImageBytes(v as never) },
  { name: 'decodePng(bytes)', call: (v) => lib.decodePng(v as never), mentions: /Uint8Array/ },
  { name: 'encodePng(img)', call: (v) => lib.encodePng(v as never), mentions: /img|image/ },
  { name: 'isTiff(bytes)', call: (v) => lib.isTiff(v as never) },
  { name: 'decodeTiff(bytes)', call: (v) => lib.decodeTiff(v as never) },
  ...optionRows('decodeTiff', (o) => lib.decodeTiff(pngBytes, o as never), { page: ['42'], palette: [] }),
  { name: 'encodeTiff(pages)', call: (v) => lib.encodeTiff(v as never), mentions: /pages?\b|image/ },
  ...optionRows('encodeTiff', (o) => lib.encodeTiff(image8(), o as never), { compression: [], predictor: ['true'], level: [] }),
  { name: 'sniffFormat(bytes)', call: (v) => lib.sniffFormat(v as never) },
  { name: 'formatFromFileName(name)', call: (v) => lib.formatFromFileName(v as never), valid: ["'str'"] },
  { name: 'readImage(bytes)', call: (v) => lib.readImage(v as never) },
  ...optionRows('readImage', (o) => lib.readImage(pngBytes, o as never), { page: ['42'] }),
  { name: 'decodeImage(bytes)', call: (v) => lib.decodeImage(v as never) },
  ...optionRows('decodeImage', (o) => lib.decodeImage(pngBytes, o as never), {}),
  { name: 'writeImage(image)', call: (v) => lib.writeImage(v as never, { format: 'png' }), valid: ['[]'] },
  ...optionRows('writeImage', (o) => lib.writeImage(image8(), o as never), { format: [] }, []).map((row) =>
    row.name === 'writeImage(options)' ? { ...row, valid: [], mentions: /options|format/ } : row,
  ),
  // io/info-bar, io/normalize, io/metrics, io/ssim, io/noise
  { name: 'cropRows(image)', call: (v) => lib.cropRows(v as never, 0, 1) },
  { name: 'cropRows(y0)', call: (v) => lib.cropRows(image8(), v as never, 1), valid: ['42'] },
  { name: 'infoBarFromRows(image)', call: (v) => lib.infoBarFromRows(v as never, 1) },
  { name: 'detectInfoBar(image)', call: (v) => lib.detectInfoBar(v as never), mentions: /image/ },
  { name: 'splitInfoBar(image)', call: (v) => lib.splitInfoBar(v as never, 'auto'), mentions: /image/ },
  { name: 'percentile(values)', call: (v) => lib.percentile(v as never, 50), mentions: /values|no values/ },
  { name: 'percentile(p)', call: (v) => lib.percentile([1, 2], v as never), valid: ['42'], mentions: /\bp\b/ },
  { name: 'percentiles(ps)', call: (v) => lib.percentiles([1, 2], v as never), valid: ['[]'], mentions: /\bps?\b/ },
  { name: 'percentileNormalize(image)', call: (v) => lib.percentileNormalize(v as never), mentions: /image/ },
  { name: 'mse(a)', call: (v) => lib.mse(v as never, [1]), mentions: /\ba\b/ },
  { name: 'relativeL2(y)', call: (v) => lib.relativeL2(v as never, [1]), mentions: /\by\b/ },
  { name: 'maxAbsDiff(b)', call: (v) => lib.maxAbsDiff([1], v as never), mentions: /\bb\b/ },
  { name: 'psnr(a)', call: (v) => lib.psnr(v as never, [1, 2]), mentions: /\ba\b|image|array/ },
  { name: 'gaussianWeights(sigma)', call: (v) => lib.gaussianWeights(v as never), valid: ['42'] },
  { name: 'ssim(a)', call: (v) => lib.ssim(v as never, image8()) },
  { name: 'ssim(options)', call: (v) => lib.ssim(image8(), image8(), v as never), valid: UNDEF_OR_EMPTY },
  { name: 'psnrGpu(ctx)', call: (v) => lib.psnrGpu(v as never, image8(), image8()) },
  { name: 'ssimGpu(ctx)', call: (v) => lib.ssimGpu(v as never, image8(), image8()) },
  { name: 'createRng(seed)', call: (v) => lib.createRng(v as never), valid: ['42'], mentions: /seed/ },
  { name: 'addGaussianNoise(data)', call: (v) => lib.addGaussianNoise(v as never, 0.1, 1), mentions: /data|Float32Array/ },
  // models/, weights/
  { name: 'architectureByName(name)', call: (v) => lib.architectureByName(v as never), valid: ["'str'"] },
  { name: 'recogniseStateDict(keys)', call: (v) => lib.recogniseStateDict(v as never) },
  { name: 'networkFromStateDict(sd)', call: (v) => lib.networkFromStateDict(v as never) },
  { name: 'networkFromCheckpoint(bytes)', call: (v) => lib.networkFromCheckpoint(v as never) },
  ...optionRows('networkFromCheckpoint', (o) => lib.networkFromCheckpoint(new Uint8Array(8), o as never), { architecture: [] }),
  {
    name: 'planTiles(width)',
    call: (v) => lib.planTiles(v as never, 8, 8, { alignment: 1, halo: 0, exact: true, minSize: 1 }),
    valid: ['42'],
  },
  { name: 'planTiles(spec)', call: (v) => lib.planTiles(8, 8, 8, v as never), valid: ['{}', '[]'] },
  { name: 'tilingFor(network)', call: (v) => lib.tilingFor(v as never) },
  { name: 'readPth(bytes)', call: (v) => lib.readPth(v as never) },
  { name: 'readSafetensors(input)', call: (v) => lib.readSafetensors(v as never), mentions: /Uint8Array|input/ },
  { name: 'readCheckpoint(input)', call: (v) => lib.readCheckpoint(v as never), mentions: /Uint8Array|input|checkpoint/ },
  { name: 'readCheckpointContents(input)', call: (v) => lib.readCheckpointContents(v as never), mentions: /Uint8Array|input|checkpoint/ },
  { name: 'writeSafetensors(tensors)', call: (v) => lib.writeSafetensors(v as never) },
  ...optionRows('writeSafetensors', (o) => lib.writeSafetensors(new Map(), o as never), { floatDType: [] }),
];

/** The argument (or option) name inside `fn(name)`. */
function argumentName(row: Row): RegExp {
  const inner = row.name.slice(row.name.indexOf('(') + 1, -1).replace(/^float /, '');
  return new RegExp(`\\b${inner.replace(/\./g, '\\.')}\\b`);
}

let hadDawnGlobals: boolean;
beforeAll(() => {
  hadDawnGlobals = 'GPUBufferUsage' in globalThis;
});

describe('wrong argument types are InvalidInputError (INVALID_INPUT), naming the argument', () => {
  it.each(ROWS.map((row) => [row.name, row] as const))('%s', async (_, row) => {
    const problems: string[] = [];
    for (const [label, make] of Object.entries(WRONG)) {
      if (row.valid?.includes(label)) continue;
      let error: unknown;
      try {
        await row.call(make());
        problems.push(`${label}: no error`);
        continue;
      } catch (e) {
        error = e;
      }
      if (!(error instanceof lib.RestoreError) || !(error instanceof lib.InvalidInputError) || error.code !== 'INVALID_INPUT') {
        problems.push(`${label}: ${(error as Error)?.constructor?.name} ${String((error as Error)?.message)}`);
      } else if (!(row.mentions ?? argumentName(row)).test(error.message)) {
        problems.push(`${label}: the message does not name the argument: ${error.message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('names the function and says what was passed', async () => {
    await expect(lib.denoise(null as never)).rejects.toThrow('denoise: image must be an image object, got null');
    await expect(lib.upscale(42 as never, {})).rejects.toThrow('upscale: image must be an image object, got number 42');
    await expect(lib.denoise(image8(), { tileSize: 'a' as never })).rejects.toThrow(
      "denoise: options.tileSize must be an integer >= 0, got string 'a'",
    );
    await expect(lib.denoise(image8(), { signal: {} as never })).rejects.toThrow(
      'denoise: options.signal must be an AbortSignal, got object',
    );
    expect(() => lib.decodeTiff(new Uint8Array(8), null as never)).toThrow('decodeTiff: options must be an options object, got null');
    await expect(model.runFloat(floatImage(), null as never)).rejects.toThrow('runFloat: options must be an options object, got null');
    await expect(model.runFloat(floatImage(), { tileSize: 'a' as never })).rejects.toThrow(
      "runFloat: options.tileSize must be an integer >= 0, got string 'a'",
    );
    await expect(model.run(image8(), { onProgress: 5 as never })).rejects.toThrow('run: options.onProgress must be');
  });

  it('checked functions keep their names and still work', () => {
    expect(lib.encodePng.name).toBe('encodePng');
    expect(lib.readImageFile.name).toBe('readImageFile');
    const back = lib.decodeImage(lib.encodePng(image8()));
    expect(Array.from(back.data)).toEqual([1, 2, 3, 4]);
    expect(lib.maxValue(16)).toBe(65535);
  });

  it('right types pass the checks: a real AbortSignal, tileSize 0, percentiles, a callback', () => {
    const options = { signal: new AbortController().signal, tileSize: 0, onProgress: () => undefined, normalize: { low: 1, high: 99.8 } };
    expect(() => checkRunOptions('run', options)).not.toThrow();
    expect(() => checkRunOptions('run', undefined)).not.toThrow();
    expect(() => checkRunOptions('run', { tileSize: 1.5 })).toThrow('run: options.tileSize must be an integer >= 0, got number 1.5');
  });
});

afterAll(() => {
  // nodeGPU() installs Dawn's classes as globals: none here means no call above reached the GPU.
  expect('GPUBufferUsage' in globalThis).toBe(hadDawnGlobals);
});
