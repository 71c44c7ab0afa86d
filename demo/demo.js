/**
 * webgpu-restore demo: open or drop an image, pick a network, run it on the GPU with progress and cancel,
 * compare before and after, download the result.
 *
 * A plain ES module on purpose: it shows how a page without a bundler uses the library's self-contained bundle.
 * Everything runs in this page; the only requests go to the server this page came from (the bundle and the
 * built-in weights in ../assets/, which the bundle fetches itself).
 *
 * Hooks for tests and scripts: `document.body.dataset.state` is 'loading', 'ready', 'running', 'done',
 * 'cancelled' or 'error' (the last outcome), the error box carries the error's `code` in `data-code`, and
 * `window.demo` exposes the state (input image, model, result; `train` for the training panel).
 */

import { initTrainPanel } from './train-panel.js';

const $ = (id) => document.getElementById(id);
const ui = {
  adapter: $('adapter'),
  error: $('error'),
  dropZone: $('drop-zone'),
  imageInput: $('image-input'),
  imageInfo: $('image-info'),
  pageChoice: $('page-choice'),
  pageSelect: $('page-select'),
  keepInfoBar: $('keep-info-bar'),
  modelSource: $('model-source'),
  weightsChoice: $('weights-choice'),
  weightsInput: $('weights-input'),
  modelInfo: $('model-info'),
  tileSize: $('tile-size'),
  run: $('run'),
  cancel: $('cancel'),
  progress: $('progress'),
  progressText: $('progress-text'),
  notes: $('notes'),
  sideBySide: $('side-by-side'),
  downloadPng: $('download-png'),
  downloadTiff: $('download-tiff'),
  compare: $('compare'),
  beforeCanvas: $('before-canvas'),
  afterCanvas: $('after-canvas'),
  afterPane: document.querySelector('#compare .after'),
  divider: document.querySelector('#compare .divider'),
  slider: $('compare-slider'),
  viewerEmpty: $('viewer-empty'),
};

const CHECKPOINT_NAME = /\.(pth|pt|ckpt|safetensors)$/i;

const state = {
  /** The opened file: { name, format: 'png' | 'tiff' | 'browser', pages: [{ image, metadata? }] }. */
  file: undefined,
  page: 0,
  /** The selected RestorationModel, and whether this page loaded it from a file (and so disposes it). */
  model: undefined,
  modelOwned: false,
  /** Bumped on every model change, so a slow load that was superseded is dropped. */
  modelToken: 0,
  modelLoading: false,
  /** The AbortController of the run in progress. */
  running: undefined,
  /** { image, notes, ms, tiles } of the last finished run. */
  result: undefined,
  downloadUrls: [],
};
window.demo = { state };

function setState(s) {
  document.body.dataset.state = s;
}

// --- errors ---------------------------------------------------------------------------------------------

/** The library's errors carry a stable `code` (RestoreError); anything else is shown by its class name. */
function errorParts(e) {
  if (e && typeof e === 'object') {
    const code = typeof e.code === 'string' ? e.code : e.name || 'Error';
    return { code, message: e.message || String(e) };
  }
  return { code: 'Error', message: String(e) };
}

function showError(e, doing) {
  const { code, message } = errorParts(e);
  const label = document.createElement('code');
  label.textContent = code;
  ui.error.replaceChildren(label, ' ', `${doing}: ${message}`);
  ui.error.dataset.code = code;
  ui.error.hidden = false;
  // Not console.error: a failed user action is reported in the page, it is not a bug of the page.
  console.warn(`[demo] ${doing}:`, e);
}

function clearError() {
  ui.error.hidden = true;
  ui.error.replaceChildren();
  delete ui.error.dataset.code;
}

// --- loading the library ----------------------------------------------------------------------------------

let restore;
try {
  restore = await import('../dist/webgpu-restore.browser.js');
} catch (e) {
  const hint =
    location.protocol === 'file:'
      ? 'this page must be served over HTTP: run `npm run demo:serve` and open the URL it prints'
      : 'is the library built? Run `npm run build` (it writes dist/webgpu-restore.browser.js)';
  showError(e, `loading the library (${hint})`);
  ui.adapter.textContent = 'not available';
  setState('error');
  throw e;
}

// --- GPU adapter --------------------------------------------------------------------------------------------

async function initGpu() {
  try {
    const ctx = await restore.getDefaultContext();
    ui.adapter.textContent = ctx.adapterName;
    const d = ctx.describe();
    ui.adapter.title = `features: ${d.features.join(', ') || 'none'}\nlimits: ${JSON.stringify(d.limits, null, 1)}`;
    return true;
  } catch (e) {
    ui.adapter.textContent = 'none';
    showError(
      e,
      'starting WebGPU (this page needs a browser with WebGPU: Chrome or Edge 113+, on Linux with ' +
        '--enable-unsafe-webgpu; Safari 26; Firefox 141+ on Windows)',
    );
    return false;
  }
}

// --- images ------------------------------------------------------------------------------------------------

/**
 * PNG and TIFF go through the library's decoders (every bit depth, palette SEM TIFFs, pages, metadata); other
 * formats through the browser's (8-bit), which imagesFromFile does for us. A file neither can read gets the
 * library's ImageFormatError, which names the format.
 */
async function decodeFile(file) {
  const decoded = await restore.imagesFromFile(file);
  return { name: file.name, format: decoded.format, pages: decoded.pages };
}

const currentPage = () => state.file?.pages[state.page];

function describeImage(file, page) {
  const img = page.image;
  const kind = img.channels === 1 ? 'grayscale' : 'RGB';
  const depth = img.bitDepth === 32 ? '32-bit float' : `${img.bitDepth}-bit`;
  const format = file.format === 'browser' ? 'decoded by the browser' : file.format.toUpperCase();
  const parts = [`${file.name}: ${img.width}×${img.height}, ${kind}${img.alpha ? ' + alpha' : ''}, ${depth}, ${format}`];
  if (file.pages.length > 1) parts.push(`${file.pages.length} pages`);
  if (page.metadata?.palette === 'index') parts.push('palette TIFF (index = grey level)');
  const bar = restore.detectInfoBar(img);
  parts.push(bar ? `SEM info bar: bottom ${bar.rows} rows` : 'no info bar');
  return parts.join('; ');
}

async function openImage(file) {
  if (state.running) return;
  clearError();
  try {
    const decoded = await decodeFile(file);
    state.file = decoded;
    state.page = 0;
    ui.pageSelect.replaceChildren(
      ...decoded.pages.map((p, i) => new Option(`${i + 1} of ${decoded.pages.length} (${p.image.width}×${p.image.height})`, String(i))),
    );
    ui.pageChoice.hidden = decoded.pages.length < 2;
    showInput();
    setState('ready');
  } catch (e) {
    showError(e, 'opening the image');
    setState('error');
  }
  updateButtons();
}

function showInput() {
  clearResult();
  const page = currentPage();
  if (!page) return;
  ui.imageInfo.textContent = describeImage(state.file, page);
  drawRaster(ui.beforeCanvas, page.image, displayRange(page.image));
  ui.viewerEmpty.hidden = true;
  ui.compare.hidden = false;
  layoutCompare();
}

// --- drawing ---------------------------------------------------------------------------------------------------

/** Values mapped to 0..255 for display: the full integer range, or a float image's min..max. */
function displayRange(img) {
  if (img.bitDepth !== 32) return [0, img.bitDepth === 16 ? 65535 : 255];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of img.data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return Number.isFinite(lo) && hi > lo ? [lo, hi] : [0, 1];
}

/** The library maps 16-bit to 8-bit, replicates gray and applies alpha; float images use [lo, hi]. */
function drawRaster(canvas, img, range) {
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext('2d').putImageData(restore.imageToImageData(img, { range }), 0, 0);
}

/** Shown size: the output's, magnified by a whole factor up to ~512 px so small crops stay inspectable. */
function layoutCompare() {
  const side = ui.sideBySide.checked && !!state.result;
  ui.compare.classList.toggle('side', side);
  const w = state.result?.image.width ?? currentPage()?.image.width ?? 0;
  const zoom = Math.max(1, Math.floor(512 / w));
  ui.compare.style.width = side ? '100%' : `${w * zoom}px`;
  ui.afterPane.hidden = !state.result;
  ui.slider.hidden = !state.result;
  ui.divider.hidden = !state.result;
}

function setSplit(percent) {
  const p = Math.min(100, Math.max(0, percent));
  ui.compare.style.setProperty('--split', `${p}%`);
  ui.slider.value = String(p);
}

// --- models -----------------------------------------------------------------------------------------------------

function setModelInfo(rows) {
  ui.modelInfo.replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      return [dt, dd];
    }),
  );
}

/** Parameters and tensors of a network, walking its modules the way PyTorch's state_dict does. */
function countParameters(network) {
  let values = 0;
  let tensors = 0;
  const visit = (m) => {
    for (const p of Object.values(m.parameters?.() ?? {})) {
      values += p.shape.reduce((a, b) => a * b, 1);
      tensors++;
    }
    for (const [, child] of m.children?.() ?? []) visit(child);
  };
  visit(network);
  return { values, tensors };
}

function describeModel(model) {
  const { name, architecture, inChannels, outChannels, scale } = model.info;
  const net = model.network;
  let task = '';
  try {
    task = ` (${restore.architectureByName(architecture).task})`;
  } catch {
    // a variant the registry lists under another name
  }
  const kind = (c) => (c === 1 ? 'gray' : c === 3 ? 'RGB' : `${c} channels`);
  const rows = [
    ['Model', name],
    ['Architecture', `${architecture}${task}`],
    ['Channels', `${inChannels} → ${outChannels} (${kind(inChannels)} → ${kind(outChannels)})`],
    ['Scale', `×${scale}`],
  ];
  const { values, tensors } = countParameters(net);
  if (tensors > 0) rows.push(['Parameters', `${values.toLocaleString('en-US')} in ${tensors} tensors`]);
  rows.push(['Values', net.valueRange === 'symmetric' ? '[−1, 1]' : '[0, 1]']);
  const spec = restore.tilingFor(net);
  rows.push(['Tiling', spec.exact ? `exact (halo ${spec.halo} px)` : `approximate (overlap ${spec.halo} px)`]);
  if (net.config !== undefined) rows.push(['Config', JSON.stringify(net.config)]);
  setModelInfo(rows);
}

/** Makes the model `load()` returns the current one (unless another choice came in meanwhile). */
async function selectModel(label, load, owned) {
  const token = ++state.modelToken;
  state.modelLoading = true;
  setModelInfo([['Model', `loading ${label}…`]]);
  clearError();
  updateButtons();
  try {
    const model = await load();
    if (token !== state.modelToken) {
      if (owned) model.dispose();
      return;
    }
    if (state.model && state.modelOwned) state.model.dispose();
    state.model = model;
    state.modelOwned = owned;
    describeModel(model);
    clearResult();
    if (document.body.dataset.state !== 'loading') setState('ready');
  } catch (e) {
    if (token !== state.modelToken) return;
    if (state.model && state.modelOwned) state.model.dispose();
    state.model = undefined;
    setModelInfo([['Model', 'none']]);
    showError(e, `loading ${label}`);
    setState('error');
  } finally {
    if (token === state.modelToken) state.modelLoading = false;
    updateButtons();
  }
}

function selectBuiltin(name) {
  return selectModel(`built-in ${name}`, () => restore.loadBuiltinModel(name), false);
}

function selectCheckpoint(file) {
  ui.modelSource.value = 'file';
  ui.weightsChoice.hidden = false;
  // The library reads .pth (zip or legacy pickle, restricted unpickler) and .safetensors, and recognises the
  // network from the keys and shapes of the state_dict.
  return selectModel(file.name, () => restore.loadModel(file, { name: file.name }), true);
}

// --- running ----------------------------------------------------------------------------------------------------

/**
 * The tile size for a run. 'auto' uses tiles of at least 256 px (4× the receptive-field radius, so the halo
 * costs little) where tiling is exact, which gives progress and lets Cancel stop between tiles; where tiling
 * would be approximate (SCUNet) or one tile would cover the image, the library runs the whole image and tiles
 * only when it does not fit the device.
 */
function tileSizeFor(model, img) {
  const choice = ui.tileSize.value;
  if (choice !== 'auto') return Number(choice);
  const spec = restore.tilingFor(model.network);
  if (!spec.exact) return undefined;
  const core = Math.ceil(Math.max(256, 4 * spec.halo) / spec.alignment) * spec.alignment;
  return core >= Math.max(img.width, img.height) ? undefined : core;
}

/** Nearest-neighbour resize of an alpha plane for an output the model enlarged. */
function resizeAlpha(alpha, w, h, ow, oh) {
  const out = new alpha.constructor(ow * oh);
  for (let y = 0; y < oh; y++) {
    const sy = Math.min(h - 1, Math.floor((y * h) / oh));
    for (let x = 0; x < ow; x++) out[y * ow + x] = alpha[sy * w + Math.min(w - 1, Math.floor((x * w) / ow))];
  }
  return out;
}

/**
 * One image through the model, the way the CLI does it: channels conformed (with a note), the SEM info bar cut
 * off and pasted back, integer images through `run` (same bit depth back), float images through `runFloat`,
 * alpha passed through.
 */
async function restoreImage(model, input, runOptions) {
  const notes = [];
  const { name, inChannels, scale } = model.info;
  let img = input;
  if (img.channels !== inChannels) {
    img = restore.conformChannels(img, inChannels, 'convert', `model '${name}'`);
    notes.push(
      inChannels === 1
        ? `'${name}' is a grayscale model: the RGB image was converted to gray (BT.601 luma) first.`
        : `'${name}' is a colour model: the gray image was copied into three channels first.`,
    );
  }
  let bar;
  if (ui.keepInfoBar.checked) {
    if (scale === 1) {
      const split = restore.splitInfoBar(img, 'auto');
      if (split.bar) {
        img = split.content;
        bar = split.bar;
        notes.push(`The SEM info bar (bottom ${split.info.rows} rows) was left out of the run and pasted back unchanged.`);
      }
    } else if (restore.detectInfoBar(img)) {
      notes.push(`An info bar was found, but a ×${scale} model changes the size: it went through the network too.`);
    }
  }
  const tileSize = tileSizeFor(model, img);
  const options = { ...runOptions, tileSize };
  let out;
  if (img.bitDepth === 32) {
    const symmetric = model.network.valueRange === 'symmetric';
    const x = restore.rasterToFloat(img);
    if (symmetric) x.data = x.data.map((v) => 2 * v - 1);
    const y = (await model.runFloat(x, options)).image;
    if (symmetric) y.data = y.data.map((v) => (v + 1) / 2);
    out = restore.floatToRaster(y, 32);
  } else {
    out = await model.run(img, options);
  }
  if (img.alpha) {
    out =
      out.width === img.width && out.height === img.height
        ? restore.copyAlpha(img, out)
        : { ...out, alpha: resizeAlpha(img.alpha, img.width, img.height, out.width, out.height) };
  }
  if (bar) out = restore.pasteInfoBar(out, bar);
  if (input.bitDepth === 16) notes.push('16-bit image: shown with 8 bits here; the PNG and TIFF downloads keep 16 bits.');
  return { image: out, notes, tileSize };
}

function setProgress(done, total, text) {
  if (total === undefined)
    ui.progress.removeAttribute('value'); // indeterminate
  else {
    ui.progress.max = total;
    ui.progress.value = done;
  }
  ui.progressText.textContent = text;
}

function setNotes(notes) {
  ui.notes.replaceChildren(
    ...notes.map((n) => {
      const li = document.createElement('li');
      li.textContent = n;
      return li;
    }),
  );
}

async function run() {
  const page = currentPage();
  const model = state.model;
  if (!page || !model || state.running) return;
  clearError();
  clearResult();
  setNotes([]);
  const controller = new AbortController();
  state.running = controller;
  setState('running');
  updateButtons();
  let done = 0;
  let total = 0;
  setProgress(0, undefined, 'Running… (the first run of a network compiles its GPU pipelines)');
  const t0 = performance.now();
  try {
    const result = await restoreImage(model, page.image, {
      signal: controller.signal,
      onProgress: (p) => {
        done = p.done;
        total = p.total;
        setProgress(done, total, `Tile ${done} of ${total}`);
      },
    });
    const ms = performance.now() - t0;
    state.result = { ...result, ms, tiles: total, modelInfo: model.info, page };
    setNotes(result.notes);
    setProgress(1, 1, `Done in ${(ms / 1000).toFixed(2)} s (${total > 1 ? `${total} tiles of ${result.tileSize} px` : 'whole image'}).`);
    showResult();
    setState('done');
  } catch (e) {
    if (errorParts(e).code === 'ABORTED') {
      setProgress(
        done,
        total || 1,
        `Cancelled after ${done} of ${total || '?'} tiles (ABORTED); the GPU buffers of the run were released.`,
      );
      setState('cancelled');
    } else {
      setProgress(0, 1, 'Failed.');
      showError(e, `running ${model.name}`);
      setState('error');
    }
  } finally {
    state.running = undefined;
    updateButtons();
  }
}

// --- result and downloads ----------------------------------------------------------------------------------------

function clearResult() {
  state.result = undefined;
  for (const url of state.downloadUrls) URL.revokeObjectURL(url);
  state.downloadUrls = [];
  for (const a of [ui.downloadPng, ui.downloadTiff]) {
    a.hidden = true;
    a.removeAttribute('href');
  }
  layoutCompare();
}

function offerDownload(link, bytes, type, fileName) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  state.downloadUrls.push(url);
  link.href = url;
  link.download = fileName;
  link.title = `${fileName} (${bytes.byteLength.toLocaleString('en-US')} bytes)`;
  link.hidden = false;
}

function showResult() {
  const { image, modelInfo, page } = state.result;
  drawRaster(ui.afterCanvas, image, displayRange(page.image.bitDepth === 32 ? page.image : image));
  setSplit(Number(ui.slider.value));
  layoutCompare();

  const stem = state.file.name.replace(/\.[^./]+$/, '') + (state.file.pages.length > 1 ? `.page${state.page + 1}` : '');
  const suffix = modelInfo.scale > 1 ? `x${modelInfo.scale}` : 'denoised';
  try {
    if (image.bitDepth !== 32) {
      offerDownload(ui.downloadPng, restore.writeImage(image, { format: 'png' }), 'image/png', `${stem}.${suffix}.png`);
    }
    // TIFF keeps what was read with a TIFF page (palette, resolution scaled with the size, vendor tags).
    let metadata = page.metadata;
    const sx = image.width / page.image.width;
    const sy = image.height / page.image.height;
    if (metadata?.resolution && (sx !== 1 || sy !== 1)) {
      metadata = { ...metadata, resolution: { ...metadata.resolution, x: metadata.resolution.x * sx, y: metadata.resolution.y * sy } };
    }
    const tiff = restore.writeImage(metadata ? { image, metadata } : image, { format: 'tiff' });
    offerDownload(ui.downloadTiff, tiff, 'image/tiff', `${stem}.${suffix}.tif`);
  } catch (e) {
    showError(e, 'encoding the result');
  }
}

// --- controls ------------------------------------------------------------------------------------------------------

function updateButtons() {
  const busy = !!state.running;
  ui.run.disabled = busy || state.modelLoading || !state.model || !currentPage();
  ui.cancel.disabled = !busy;
  for (const el of [ui.imageInput, ui.modelSource, ui.weightsInput, ui.pageSelect, ui.tileSize, ui.keepInfoBar]) el.disabled = busy;
}

for (const [name, { description }] of Object.entries(restore.BUILTIN_MODELS)) {
  ui.modelSource.append(new Option(`Built-in: ${description}`, `builtin:${name}`));
}
ui.modelSource.append(new Option('Checkpoint file (.pth, .safetensors)…', 'file'));

ui.modelSource.addEventListener('change', () => {
  const v = ui.modelSource.value;
  ui.weightsChoice.hidden = v !== 'file';
  if (v.startsWith('builtin:')) void selectBuiltin(v.slice('builtin:'.length));
  else if (ui.weightsInput.files?.[0]) void selectCheckpoint(ui.weightsInput.files[0]);
  else ui.weightsInput.click();
});
ui.weightsInput.addEventListener('change', () => {
  const f = ui.weightsInput.files?.[0];
  if (f) void selectCheckpoint(f);
});
ui.imageInput.addEventListener('change', () => {
  const f = ui.imageInput.files?.[0];
  if (f) void openImage(f);
});
ui.pageSelect.addEventListener('change', () => {
  state.page = Number(ui.pageSelect.value);
  showInput();
});
ui.run.addEventListener('click', () => void run());
ui.cancel.addEventListener('click', () => {
  if (!state.running) return;
  state.running.abort();
  ui.progressText.textContent = 'Cancelling… (after the tile that is running)';
});
ui.sideBySide.addEventListener('change', layoutCompare);
ui.slider.addEventListener('input', () => setSplit(Number(ui.slider.value)));

// Dragging across the image moves the split too.
ui.compare.addEventListener('pointerdown', (e) => {
  if (!state.result || ui.sideBySide.checked || e.target === ui.slider) return;
  ui.compare.setPointerCapture(e.pointerId);
  const move = (ev) => {
    const r = ui.compare.getBoundingClientRect();
    setSplit(((ev.clientX - r.left) / r.width) * 100);
  };
  move(e);
  ui.compare.addEventListener('pointermove', move);
  ui.compare.addEventListener('pointerup', () => ui.compare.removeEventListener('pointermove', move), { once: true });
});

/** Dropped or pasted files: a checkpoint selects the model, another file is opened as the image. */
function takeFiles(files) {
  const checkpoint = files.find((f) => CHECKPOINT_NAME.test(f.name));
  const image = files.find((f) => !CHECKPOINT_NAME.test(f.name));
  if (checkpoint) void selectCheckpoint(checkpoint);
  if (image) void openImage(image);
}
window.addEventListener('dragover', (e) => {
  e.preventDefault();
  document.body.classList.add('dragging');
});
window.addEventListener('dragleave', (e) => {
  if (e.relatedTarget === null) document.body.classList.remove('dragging');
});
window.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  if (!state.running && e.dataTransfer?.files.length) takeFiles([...e.dataTransfer.files]);
});
window.addEventListener('paste', (e) => {
  if (!state.running && e.clipboardData?.files.length) takeFiles([...e.clipboardData.files]);
});

// --- training on the user's images (train-panel.js: a worker trains, the trained weights come back here) ------------

initTrainPanel({ restore, useCheckpoint: selectCheckpoint, showError, clearError });

// --- start -------------------------------------------------------------------------------------------------------

updateButtons();
if (await initGpu()) {
  await selectBuiltin(restore.DEFAULT_MODEL);
  if (state.model) setState('ready');
} else {
  setModelInfo([['Model', 'none (no WebGPU)']]);
  setState('error');
}
