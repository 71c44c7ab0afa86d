/**
 * A module Web Worker that trains a denoiser on the user's own noisy images (fineTune: N2V2, N2V or
 * Neighbor2Neighbor) on a GPU device of its own, so that the page that started it stays responsive however long
 * the steps take. Messages: train-protocol.ts.
 *
 * Built to dist/train-worker.js (tsup.config.ts), which imports the library from the browser bundle next to it
 * (dist/webgpu-restore.browser.js) rather than carrying a second copy: it uses the public API alone.
 *
 *   const worker = new Worker(new URL('…/dist/train-worker.js', import.meta.url), { type: 'module' });
 *   worker.postMessage({ type: 'start', images: [{ name: file.name, file }], method: 'n2v2', init: { kind: 'n2v-unet' } });
 */
import {
  AbortedError,
  fineTune,
  type FitProgress,
  type FloatImage,
  type GPUContext,
  InvalidInputError,
  type Network,
  requestContext,
  trainedStateToPth,
} from '../index';
import { Previewer, centreCrop } from './train-preview';
import type { FromTrainWorker, TrainWorkerError } from './train-protocol';
import { checkStart, decodeImages, initialNetwork, toTrainingImages, type TrainRequest } from './train-request';
import { parameterCount, trainedStateOf } from './train-state';

/** What this file needs of DedicatedWorkerGlobalScope (the project's TypeScript lib is the DOM's). */
interface WorkerScope {
  postMessage(message: FromTrainWorker, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<unknown>) => void): void;
}

const scope = self as unknown as WorkerScope;
/** Fine-tuning weights that already denoise takes smaller steps than training from scratch (n2v's 4e-4). */
const LR_FRESH = 4e-4;
const LR_FINE_TUNE = 5e-5;

let context: Promise<GPUContext> | undefined;
/** The run in progress, stopped by 'cancel'. */
let running: AbortController | undefined;

function post(message: FromTrainWorker, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

/** The bytes of `view` in an ArrayBuffer of their own, to transfer (a view may share a larger buffer). */
function ownBuffer(view: Uint8Array | Float32Array): ArrayBuffer {
  const whole = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
  return (whole ? view.buffer : view.slice().buffer) as ArrayBuffer;
}

/** A planar image whose data owns its buffer, and that buffer to transfer. */
function transferableImage(image: FloatImage): [FloatImage, ArrayBuffer] {
  const buffer = ownBuffer(image.data);
  return [{ width: image.width, height: image.height, channels: image.channels, data: new Float32Array(buffer) }, buffer];
}

function errorOf(e: unknown): TrainWorkerError {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, code: typeof code === 'string' ? code : e.name, message: e.message };
  }
  return { name: 'Error', code: 'Error', message: String(e) };
}

/** The worker's device, requested on the first run and again after it was lost. */
async function gpu(): Promise<GPUContext> {
  const ctx = await context?.catch(() => undefined);
  if (ctx && !ctx.isLost) return ctx;
  context = requestContext(navigator.gpu);
  return context;
}

scope.addEventListener('message', (e) => {
  const msg = e.data as { type?: unknown } | null;
  const type = typeof msg === 'object' && msg !== null ? msg.type : undefined;
  if (type === 'cancel') {
    running?.abort();
  } else if (type === 'start') {
    if (running) post({ type: 'error', error: errorOf(new InvalidInputError('a training run is in progress: cancel it first')) });
    else void start(msg as Record<string, unknown>);
  } else {
    post({ type: 'error', error: errorOf(new InvalidInputError(`unknown message type ${String(type)} (expected 'start' or 'cancel')`)) });
  }
});

async function start(msg: Record<string, unknown>): Promise<void> {
  const controller = new AbortController();
  running = controller;
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  let step = 0;
  let trained: Network | undefined;
  let previewer: Previewer | undefined;
  try {
    const request = checkStart(msg);
    const prepared = await prepare(request, controller.signal);
    ({ network: trained, previewer } = prepared);
    const { ctx, network, images } = prepared;
    const { lr, ...options } = request.options;
    const fresh = request.init.kind === 'n2v-unet';
    const result = await fineTune(ctx, network, images, {
      ...options,
      method: request.method,
      optimizer: { kind: 'adam', lr: lr ?? (fresh ? LR_FRESH : LR_FINE_TUNE) },
      // One validation (and so one preview) every `previewEvery` steps; fineTune validates at the end too.
      ...(options.steps !== undefined ? { validations: Math.max(1, Math.ceil(options.steps / request.previewEvery)) } : {}),
      signal: controller.signal,
      onProgress: (p: FitProgress) => {
        step = p.step;
        post({
          type: 'progress',
          step: p.step,
          totalSteps: p.totalSteps,
          loss: p.loss,
          lr: p.lr,
          etaSeconds: p.etaSeconds,
          elapsedSeconds: seconds(),
          ...(p.validation?.loss !== undefined ? { validationLoss: p.validation.loss } : {}),
        });
        // A validation has just copied the trained weights into the network (fit.ts): preview them.
        if (p.validation) previewer?.request(p.step, network);
      },
    });
    await previewer.settled();
    const pth = ownBuffer(trainedStateToPth(result.last));
    post(
      {
        type: 'done',
        steps: result.steps,
        lastLoss: result.lastLoss,
        ...(result.bestValidation ? { bestValidation: { loss: result.bestValidation.loss, step: result.bestValidation.step } } : {}),
        validationImages: result.validationImages,
        outOfTime: result.outOfTime,
        seconds: seconds(),
        pth,
      },
      [pth],
    );
  } catch (e) {
    // No message after the run's last: the previews asked for go first.
    await previewer?.settled();
    if (e instanceof AbortedError) {
      // fineTune leaves the weights of the last finished step in the network.
      const pth = trained && step > 0 ? ownBuffer(trainedStateToPth(trainedStateOf(trained))) : undefined;
      post({ type: 'cancelled', steps: step, seconds: seconds(), ...(pth ? { pth } : {}) }, pth ? [pth] : []);
    } else {
      post({ type: 'error', error: errorOf(e) });
    }
  } finally {
    trained?.release();
    running = undefined;
  }
}

/** The device, the images and the network; then the 'started' message with the preview's "before". */
async function prepare(request: TrainRequest, signal: AbortSignal) {
  const stopIfCancelled = () => {
    if (signal.aborted) throw new AbortedError('training');
  };
  const decoded = await decodeImages(request.images, request.infoBar);
  stopIfCancelled();
  const ctx = await gpu();
  stopIfCancelled();
  // A fresh network takes RGB when every image is RGB, gray otherwise; a loaded one has its own channels.
  const channels = decoded.every((d) => d.image.channels === 3) ? 3 : 1;
  const network = await initialNetwork(request.init, channels);
  try {
    stopIfCancelled();
    const images = toTrainingImages(decoded, network.inChannels);
    const crop = centreCrop(images[0].image, request.previewSize);
    const [before, beforeBuffer] = transferableImage({ ...crop, data: crop.data.slice() });
    post(
      {
        type: 'started',
        adapter: ctx.adapterName,
        architecture: network.architecture,
        parameters: parameterCount(network),
        channels: network.inChannels,
        images: decoded.map(({ name, image, infoBarRows }) => ({
          name,
          width: image.width,
          height: image.height,
          channels: image.channels,
          ...(infoBarRows !== undefined ? { infoBarRows } : {}),
        })),
        before,
      },
      [beforeBuffer],
    );
    const previewer = new Previewer(
      ctx,
      crop,
      (step, output) => {
        const [image, buffer] = transferableImage(output);
        post({ type: 'preview', step, image }, [buffer]);
      },
      (message) => post({ type: 'warning', message }),
    );
    return { ctx, network, images, previewer };
  } catch (e) {
    network.release();
    throw e;
  }
}
