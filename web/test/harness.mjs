// Test harness: starts and stops a REAL `tailbus serve` on a loopback port, and
// small helpers (HTTP, polling). Used by client.test.mjs and e2e.test.mjs.
//
// The binary comes from TAILBUS_BINARY (ctest passes $<TARGET_FILE:tailbus>);
// run by hand: TAILBUS_BINARY=../build/test/cli/tailbus node --test test/
// (TAILBUS_UI_DIR=DIR makes the server serve the UI from DIR with --ui-dir.)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(WEB_DIR, '..');

/** The tailbus binary, or null when none is built. */
export function serverBinary() {
  const env = process.env.TAILBUS_BINARY;
  if (env) return fs.existsSync(env) ? env : null;
  for (const dir of ['build/test', 'build/release']) {
    const p = path.join(REPO_DIR, dir, 'cli', 'tailbus');
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** A fresh directory, removed when the test process exits. */
export function tempDir(prefix = 'tailbus-web-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A free loopback TCP port (bind to 0, read it, release it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a truthy value (returned) or `timeout` passes
 * (throws with `message` and the last value/error seen).
 */
export async function waitFor(fn, { timeout = 10000, interval = 25, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${message} (last: ${detail})`);
    }
    await sleep(interval);
  }
}

/** fetch with a timeout; returns {status, headers, text, json}. */
export async function request(method, url, body, { contentType = 'application/json', timeout = 10000 } = {}) {
  const init = { method, signal: AbortSignal.timeout(timeout), headers: {} };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['content-type'] = contentType;
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A tailbus server process on 127.0.0.1. */
export class TailbusServer {
  constructor({ binary = serverBinary(), db, port, uiDir = process.env.TAILBUS_UI_DIR, args = [] } = {}) {
    if (!binary) throw new Error('no tailbus binary: build it or set TAILBUS_BINARY');
    this.binary = binary;
    this.db = db ?? path.join(tempDir(), 'tailbus.db');
    this.port = port;
    this.uiDir = uiDir;
    this.args = args;
    this.proc = null;
    this.log = '';
  }
  get httpUrl() {
    return `http://127.0.0.1:${this.port}`;
  }
  get wsUrl() {
    return `ws://127.0.0.1:${this.port}`;
  }

  async start({ timeout = 20000 } = {}) {
    if (this.port == null) this.port = await freePort();
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--db', this.db, ...this.args];
    if (this.uiDir) args.push('--ui-dir', this.uiDir);
    const proc = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const keep = (chunk) => {
      this.log += chunk.toString();
      if (this.log.length > 200000) this.log = this.log.slice(-100000);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    let exited = null;
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    await waitFor(
      async () => {
        if (exited) throw new Error(`server exited (${JSON.stringify(exited)}): ${this.log.slice(-2000)}`);
        const r = await request('GET', `${this.httpUrl}/api/status`, undefined, { timeout: 1000 });
        return r.status === 200 && r.json;
      },
      { timeout, interval: 50, message: `tailbus serve on port ${this.port}` },
    ).catch((err) => {
      proc.kill('SIGKILL');
      throw new Error(`${err.message}\nserver log:\n${this.log.slice(-4000)}`);
    });
    return this;
  }

  /** Stops the process: SIGTERM (graceful) or SIGKILL (a crash); waits for the exit. */
  async stop({ signal = 'SIGTERM', timeout = 15000 } = {}) {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), timeout);
    await exited;
    clearTimeout(t);
    this.proc = null;
  }

  async status() {
    const r = await request('GET', `${this.httpUrl}/api/status`);
    if (r.status !== 200) throw new Error(`GET /api/status: ${r.status} ${r.text}`);
    return r.json;
  }

  /** POST /api/events; returns the offsets. */
  async publish(events) {
    const r = await request('POST', `${this.httpUrl}/api/events`, events);
    if (r.status !== 200 && r.status !== 201) throw new Error(`POST /api/events: ${r.status} ${r.text}`);
    return r.json.offsets;
  }
}
