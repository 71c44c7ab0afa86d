/**
 * The "Train on my images" panel of the demo: a few noisy images, a self-supervised method (N2V2, N2V,
 * Neighbor2Neighbor) and a starting point (a fresh N2V2 U-Net, or the built-in DnCNN σ=25 to fine-tune). The
 * training runs in the library's worker (../dist/train-worker.js, messages in src/worker/train-protocol.ts) on a
 * GPU device of its own, so this page keeps drawing and answering while it trains: a live loss curve, a
 * before/after preview every few steps, Cancel, the trained weights as a .pth to download, and "Denoise with it",
 * which hands them to the demo's model selection as if the file had been opened there.
 *
 * Hooks for tests: `#train-panel[data-state]` is 'idle', 'training', 'done', 'cancelled' or 'error', and
 * `window.demo.train` holds the loss history, the previews and the weights.
 */

const CHECKPOINT_NAME = /\.(pth|pt|ckpt|safetensors)$/i;
const METHOD_NAMES = { n2v2: 'N2V2', n2v: 'N2V', neighbor2neighbor: 'Neighbor2Neighbor' };
/** Adam's learning rate when the field is left empty (the worker's defaults, shown as placeholders). */
const DEFAULT_LR = { fresh: '4e-4', fineTune: '5e-5' };

/**
 * @param {object} demo what the panel needs of the demo page: the library (`restore`), `useCheckpoint(file)`
 *   (selects a checkpoint file as the model), and its `showError(e, doing)` / `clearError()`.
 */
export function initTrainPanel({ restore, useCheckpoint, showError, clearError }) {
  const $ = (id) => document.getElementById(id);
  const ui = {
    panel: $('train-panel'),
    drop: $('train-drop'),
    images: $('train-images'),
    imageList: $('train-image-list'),
    method: $('train-method'),
    init: $('train-init'),
    widthChoice: $('train-width-choice'),
    width: $('train-width'),
    patch: $('train-patch'),
    batch: $('train-batch'),
    steps: $('train-steps'),
    minutes: $('train-minutes'),
    previewEvery: $('train-preview-every'),
    lr: $('train-lr'),
    start: $('train-start'),
    cancel: $('train-cancel'),
    progress: $('train-progress'),
    status: $('train-status'),
    notes: $('train-notes'),
    download: $('train-download'),
    use: $('train-use'),
    loss: $('train-loss'),
    previews: $('train-previews'),
    before: $('train-before'),
    after: $('train-after'),
    afterCaption: $('train-after-caption'),
  };

  const train = {
    files: [],
    worker: undefined,
    running: false,
    /** [step, value] pairs: the training loss of every step, the validation loss where one ran. */
    history: { loss: [], validation: [] },
    previews: 0,
    lastPreview: undefined,
    /** The .pth bytes of the last run that produced weights, and its file name. */
    pth: undefined,
    fileName: undefined,
    downloadUrl: undefined,
    /** What the run was asked for (the file name and the status line use it). */
    run: undefined,
  };
  window.demo.train = train;

  const setState = (s) => (ui.panel.dataset.state = s);

  function updateControls() {
    const busy = train.running;
    ui.start.disabled = busy || train.files.length === 0;
    ui.cancel.disabled = !busy;
    for (const el of [ui.images, ui.method, ui.init, ui.width, ui.patch, ui.batch, ui.steps, ui.minutes, ui.previewEvery, ui.lr]) {
      el.disabled = busy;
    }
    const fresh = ui.init.value === 'n2v-unet';
    ui.widthChoice.hidden = !fresh;
    ui.lr.placeholder = `auto (${fresh ? DEFAULT_LR.fresh : DEFAULT_LR.fineTune})`;
  }

  // --- images ----------------------------------------------------------------------------------------------

  function setFiles(files) {
    if (train.running) return;
    train.files = files.filter((f) => !CHECKPOINT_NAME.test(f.name));
    listImages(train.files.map((f) => `${f.name} (${f.size.toLocaleString('en-US')} bytes)`));
    ui.status.textContent = train.files.length > 0 ? 'Ready to train.' : 'Add images to train on.';
    updateControls();
  }

  function listImages(lines) {
    ui.imageList.replaceChildren(
      ...lines.map((line) => {
        const li = document.createElement('li');
        li.textContent = line;
        return li;
      }),
    );
  }

  ui.images.addEventListener('change', () => setFiles([...(ui.images.files ?? [])]));
  // Dropped here, files are training images; the page's own drop handler (an image to denoise) does not see them.
  for (const type of ['dragover', 'drop']) {
    ui.drop.addEventListener(type, (e) => {
      e.preventDefault();
      e.stopPropagation();
      document.body.classList.remove('dragging');
      if (type === 'drop' && e.dataTransfer?.files.length) setFiles([...e.dataTransfer.files]);
    });
  }
  ui.init.addEventListener('change', updateControls);
  for (const [name, { description }] of Object.entries(restore.BUILTIN_MODELS)) {
    ui.init.append(new Option(`built-in ${description}, fine-tuned`, `builtin:${name}`));
  }

  // --- the worker ------------------------------------------------------------------------------------------

  function worker() {
    if (!train.worker) {
      train.worker = new Worker(new URL('../dist/train-worker.js', import.meta.url), { type: 'module', name: 'webgpu-restore training' });
      train.worker.addEventListener('message', (e) => onMessage(e.data));
      // Only a worker that could not load (or a bug) gets here; the library's errors come as 'error' messages.
      train.worker.addEventListener('error', (e) => {
        e.preventDefault();
        train.worker?.terminate();
        train.worker = undefined;
        fail({ code: 'WORKER', message: e.message || 'the training worker did not load (is the library built? `npm run build`)' });
      });
    }
    return train.worker;
  }

  /** The number typed into a field; undefined when it is empty (the worker then uses its default). */
  const number = (el) => (el.value.trim() === '' ? undefined : Number(el.value));

  function readOptions() {
    const minutes = number(ui.minutes);
    const lr = number(ui.lr);
    return {
      patch: number(ui.patch),
      batch: number(ui.batch),
      steps: number(ui.steps),
      ...(minutes !== undefined ? { maxSeconds: minutes * 60 } : {}),
      ...(lr !== undefined ? { lr } : {}),
    };
  }

  function start() {
    if (train.running || train.files.length === 0) return;
    clearError();
    clearWeights();
    const fresh = ui.init.value === 'n2v-unet';
    const method = ui.method.value;
    const init = fresh
      ? { kind: 'n2v-unet', n2v2: true, width: Number(ui.width.value) }
      : { kind: 'builtin', name: ui.init.value.slice('builtin:'.length) };
    const options = readOptions();
    train.run = { method, stem: fresh ? `n2v2-unet-w${init.width}` : init.name, options };
    train.history = { loss: [], validation: [] };
    train.previews = 0;
    train.lastPreview = undefined;
    ui.notes.replaceChildren();
    ui.afterCaption.textContent = 'after';
    clearCanvas(ui.after);
    drawLoss();
    train.running = true;
    setState('training');
    updateControls();
    setProgress(0, undefined, 'Starting… (decoding the images, then compiling the training kernels)');
    worker().postMessage({
      type: 'start',
      images: train.files.map((file) => ({ name: file.name, file })),
      method,
      init,
      options,
      ...(number(ui.previewEvery) !== undefined ? { previewEvery: number(ui.previewEvery) } : {}),
    });
  }

  function onMessage(msg) {
    switch (msg.type) {
      case 'started':
        return onStarted(msg);
      case 'progress':
        return onProgress(msg);
      case 'preview':
        train.previews++;
        train.lastPreview = msg.image;
        drawFloat(ui.after, msg.image);
        ui.afterCaption.textContent = `after ${msg.step} steps`;
        return;
      case 'warning':
        note(msg.message);
        console.warn(`[train] ${msg.message}`);
        return;
      case 'done':
        return finish('done', msg);
      case 'cancelled':
        return finish('cancelled', msg);
      case 'error':
        return fail(msg.error);
    }
  }

  function onStarted(msg) {
    listImages(
      msg.images.map(
        (im) =>
          `${im.name}: ${im.width}×${im.height}, ${im.channels === 1 ? 'gray' : 'RGB'}` +
          (im.infoBarRows ? ` (SEM info bar of ${im.infoBarRows} rows cut off)` : ''),
      ),
    );
    drawFloat(ui.before, msg.before);
    ui.previews.hidden = false;
    const what = `${msg.architecture}, ${msg.parameters.toLocaleString('en-US')} parameters, ${msg.channels === 1 ? 'gray' : 'RGB'}`;
    setProgress(0, undefined, `Training ${what} by ${METHOD_NAMES[train.run.method]} on ${msg.adapter}…`);
  }

  function onProgress(p) {
    train.history.loss.push([p.step, p.loss]);
    if (p.validationLoss !== undefined) train.history.validation.push([p.step, p.validationLoss]);
    scheduleDraw();
    const timed = train.run.options.maxSeconds;
    const stepsKnown = p.totalSteps < Number.MAX_SAFE_INTEGER;
    const done = stepsKnown ? p.step / p.totalSteps : 0;
    const fraction = timed ? Math.max(done, p.elapsedSeconds / timed) : done;
    const of = stepsKnown ? ` of ${p.totalSteps}` : '';
    const val = train.history.validation.at(-1);
    const valText = val ? `, validation ${val[1].toExponential(3)} (step ${val[0]})` : '';
    setProgress(
      Math.min(1, fraction),
      1,
      `Step ${p.step}${of}: loss ${p.loss.toExponential(3)}${valText}; ${formatSeconds(p.etaSeconds)} left`,
    );
  }

  function finish(outcome, msg) {
    train.running = false;
    if (msg.pth) offerWeights(new Uint8Array(msg.pth), msg.steps);
    if (outcome === 'done') {
      const best = msg.bestValidation;
      const bestText = best?.loss !== undefined ? `; best validation loss ${best.loss.toExponential(3)} at step ${best.step}` : '';
      const held = msg.validationImages.join(', ');
      setProgress(
        1,
        1,
        `Done: ${msg.steps} steps in ${formatSeconds(msg.seconds)}${msg.outOfTime ? ' (time budget reached)' : ''}, ` +
          `last loss ${msg.lastLoss.toExponential(3)}${bestText}. Validated on ${held}.`,
      );
    } else {
      const kept = msg.pth ? '; the weights after it are offered below' : '';
      setProgress(0, 1, `Cancelled after ${msg.steps} step${msg.steps === 1 ? '' : 's'} (ABORTED)${kept}.`);
    }
    setState(outcome);
    updateControls();
  }

  function fail(error) {
    train.running = false;
    setProgress(0, 1, 'Failed.');
    showError(error, 'training');
    setState('error');
    updateControls();
  }

  ui.start.addEventListener('click', start);
  ui.cancel.addEventListener('click', () => {
    if (!train.running || !train.worker) return;
    train.worker.postMessage({ type: 'cancel' });
    ui.status.textContent = 'Cancelling… (after the step that is running)';
  });

  // --- the trained weights ---------------------------------------------------------------------------------

  function clearWeights() {
    if (train.downloadUrl) URL.revokeObjectURL(train.downloadUrl);
    train.downloadUrl = undefined;
    train.pth = undefined;
    ui.download.hidden = true;
    ui.download.removeAttribute('href');
    ui.use.hidden = true;
  }

  function offerWeights(bytes, steps) {
    train.pth = bytes;
    train.fileName = `${train.run.stem}.${train.run.method}-${steps}steps.pth`;
    train.downloadUrl = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    ui.download.href = train.downloadUrl;
    ui.download.download = train.fileName;
    ui.download.title = `${train.fileName} (${bytes.byteLength.toLocaleString('en-US')} bytes): PyTorch's torch.load and this library read it`;
    ui.download.hidden = false;
    ui.use.hidden = false;
  }

  ui.use.addEventListener('click', () => {
    if (!train.pth) return;
    void useCheckpoint(new File([train.pth], train.fileName, { type: 'application/octet-stream' }));
  });

  // --- drawing ---------------------------------------------------------------------------------------------

  function setProgress(value, max, text) {
    if (max === undefined) ui.progress.removeAttribute('value');
    else {
      ui.progress.max = max;
      ui.progress.value = value;
    }
    ui.status.textContent = text;
  }

  function note(text) {
    const li = document.createElement('li');
    li.textContent = text;
    ui.notes.append(li);
  }

  /** A planar float image in [0, 1] (clamped) on a canvas of its size; CSS enlarges it without smoothing. */
  function drawFloat(canvas, image) {
    canvas.width = image.width;
    canvas.height = image.height;
    canvas.getContext('2d').putImageData(restore.imageToImageData(restore.floatToRaster(image, 8)), 0, 0);
  }

  function clearCanvas(canvas) {
    canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
  }

  let drawPending = false;
  /** Progress can come faster than frames: the curve is redrawn at most once per frame. */
  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      drawLoss();
    });
  }

  /** Training loss (line) and validation loss (dots) against the step, on a log scale. */
  function drawLoss() {
    const canvas = ui.loss;
    const g = canvas.getContext('2d');
    const { width: W, height: H } = canvas;
    const box = { left: 58, right: W - 10, top: 10, bottom: H - 22 };
    g.clearRect(0, 0, W, H);
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#5b6670';
    const { loss, validation } = train.history;
    canvas.dataset.points = String(loss.length);
    canvas.dataset.validationPoints = String(validation.length);
    const values = [...loss, ...validation].map(([, v]) => v).filter((v) => v > 0 && Number.isFinite(v));
    if (values.length === 0) {
      g.fillText('The loss appears here while training.', box.left, H / 2);
      return;
    }
    let lo = Math.log10(Math.min(...values));
    let hi = Math.log10(Math.max(...values));
    if (hi - lo < 0.05) {
      lo -= 0.05;
      hi += 0.05;
    }
    const lastStep = Math.max(loss.at(-1)?.[0] ?? 1, validation.at(-1)?.[0] ?? 1, 2);
    const x = (step) => box.left + ((step - 1) / (lastStep - 1)) * (box.right - box.left);
    const y = (v) => box.top + ((hi - Math.log10(v)) / (hi - lo)) * (box.bottom - box.top);

    g.strokeStyle = '#c9d1d8';
    g.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
    g.textAlign = 'right';
    g.fillText((10 ** hi).toExponential(1), box.left - 4, box.top + 8);
    g.fillText((10 ** lo).toExponential(1), box.left - 4, box.bottom);
    g.textAlign = 'center';
    g.fillText('1', box.left, H - 6);
    g.fillText(`step ${lastStep}`, box.right - 24, H - 6);
    g.textAlign = 'left';

    g.strokeStyle = '#2463b5';
    g.lineWidth = 1;
    g.beginPath();
    loss.forEach(([s, v], i) => {
      if (i === 0) g.moveTo(x(s), y(v));
      else g.lineTo(x(s), y(v));
    });
    g.stroke();

    g.fillStyle = g.strokeStyle = '#d9480f';
    g.beginPath();
    validation.forEach(([s, v], i) => {
      if (i === 0) g.moveTo(x(s), y(v));
      else g.lineTo(x(s), y(v));
    });
    g.stroke();
    for (const [s, v] of validation) {
      g.beginPath();
      g.arc(x(s), y(v), 3, 0, 2 * Math.PI);
      g.fill();
    }
  }

  function formatSeconds(s) {
    if (!Number.isFinite(s)) return '?';
    if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  drawLoss();
  updateControls();
  setState('idle');
}
