#!/usr/bin/env node
/**
 * `npm run demo:serve [-- --port N]`: serves the repository root on 127.0.0.1 (never on other interfaces) so that
 * demo/index.html can import dist/webgpu-restore.browser.js and the bundle can fetch assets/. Plain Node, no
 * dependencies (the test server in test/browser/server.ts is TypeScript, which Node 20 cannot run as is).
 * WebGPU needs a secure context; http://127.0.0.1 is one.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const HOST = '127.0.0.1';
const BUNDLE = resolve(ROOT, 'dist/webgpu-restore.browser.js');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.wasm': 'application/wasm',
};

function parsePort(argv) {
  const i = argv.findIndex((a) => a === '--port' || a.startsWith('--port='));
  const raw = i < 0 ? process.env.PORT : argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
  if (raw === undefined) return { port: 8080, fixed: false };
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`demo:serve: bad port '${raw}'`);
    process.exit(2);
  }
  return { port, fixed: true };
}

/** The file a URL path names inside ROOT, or undefined when it would leave it. */
function fileFor(pathname) {
  const full = resolve(ROOT, `.${sep}${pathname}`);
  return full.startsWith(ROOT) ? full : undefined;
}

const server = createServer((req, res) => {
  const reply = (status, text) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${status} ${text}\n`);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed');
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', `http://${HOST}`).pathname);
  } catch {
    return reply(400, 'bad URL');
  }
  if (pathname === '/' || pathname === '/demo') {
    res.writeHead(302, { location: '/demo/' });
    return res.end();
  }
  if (pathname.endsWith('/')) pathname += 'index.html';
  const file = fileFor(pathname);
  if (!file) return reply(403, 'outside the repository');
  let size;
  try {
    const st = statSync(file);
    if (!st.isFile()) return reply(404, 'not a file');
    size = st.size;
  } catch {
    if (pathname === '/dist/webgpu-restore.browser.js') return reply(404, 'not built yet: run `npm run build`');
    return reply(404, 'not found');
  }
  res.writeHead(200, {
    'content-type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': String(size),
    'cache-control': 'no-store',
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file)
    .on('error', (e) => res.destroy(e))
    .pipe(res);
});

const { port, fixed } = parsePort(process.argv.slice(2));
let tries = 0;
server.on('error', (e) => {
  // The default port may be taken: try the next few, unless a port was asked for.
  if (e.code === 'EADDRINUSE' && !fixed && tries++ < 10) return server.listen(port + tries, HOST);
  console.error(`demo:serve: ${e.message}`);
  process.exit(1);
});
server.on('listening', () => {
  const url = `http://${HOST}:${server.address().port}/demo/`;
  if (!existsSync(BUNDLE)) console.warn(`warning: ${BUNDLE} is missing; run \`npm run build\` first`);
  console.log(`webgpu-restore demo: ${url}`);
  console.log('(serving the repository root on 127.0.0.1 only; Ctrl+C stops)');
});
server.listen(port, HOST);
