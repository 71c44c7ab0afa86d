import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A minimal static file server for the Chromium tests. It listens on 127.0.0.1 only (random free port), serves
 * the repository root read-only, and optionally extra folders under URL prefixes (e.g. a temp dir holding a
 * test-only bundle). Nothing is cached, so a rebuilt bundle is always the one the page gets.
 */

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
};

export interface StaticServer {
  /** e.g. `http://127.0.0.1:41234` (no trailing slash). */
  origin: string;
  /** Every request that was answered with an error status, for failure messages. */
  failures: string[];
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Folder served at `/`. */
  root: string | URL;
  /** Extra folders: URL prefix (starting and ending with '/') → folder. Checked before the root. */
  mounts?: Record<string, string>;
}

function toPath(p: string | URL): string {
  return resolve(typeof p === 'string' ? p : fileURLToPath(p));
}

/** Maps a URL pathname to a file inside `base`, or undefined when it would escape it. */
function inside(base: string, rel: string): string | undefined {
  const full = resolve(base, `.${sep}${rel}`);
  return full === base || full.startsWith(base + sep) ? full : undefined;
}

export async function serveStatic(options: ServeOptions): Promise<StaticServer> {
  const root = toPath(options.root);
  const mounts = Object.entries(options.mounts ?? {}).map(([prefix, dir]) => [prefix, toPath(dir)] as const);
  const failures: string[] = [];

  const server: Server = createServer((req, res) => {
    const fail = (status: number, why: string) => {
      failures.push(`${req.method} ${req.url} → ${status} (${why})`);
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${status} ${why}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed');
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    } catch {
      return fail(400, 'bad URL');
    }
    if (pathname === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    // A folder URL serves its index.html (the demo opens at /demo/).
    if (pathname.endsWith('/')) pathname += 'index.html';
    const mount = mounts.find(([prefix]) => pathname.startsWith(prefix));
    const file = mount ? inside(mount[1], pathname.slice(mount[0].length)) : inside(root, pathname);
    if (!file) return fail(403, 'outside the served folder');
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) return fail(404, 'not a file');
      size = st.size;
    } catch {
      return fail(404, 'not found');
    }
    res.writeHead(200, {
      'content-type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': String(size),
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') return res.end();
    const stream = createReadStream(file);
    stream.on('error', (e) => res.destroy(e));
    stream.pipe(res);
  });

  await new Promise<void>((ok, ko) => {
    server.once('error', ko);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    failures,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
