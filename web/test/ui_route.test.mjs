// `tailbus serve` serves the web UI: the embedded copy by default, the files of
// --ui-dir when given; "/" is the UI for browsers and the JSON index for API
// clients; nothing outside the UI's own files is served.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TailbusServer, WEB_DIR, request, serverBinary, tempDir } from './harness.mjs';

const binary = serverBinary();
const skip = binary ? false : 'no tailbus binary (set TAILBUS_BINARY)';
const servers = [];
after(() => Promise.all(servers.map((s) => s.stop({ signal: 'SIGKILL' }))));

const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
async function get(server, p, headers = {}) {
  const res = await fetch(`${server.httpUrl}${p}`, { headers, signal: AbortSignal.timeout(10000) });
  return { status: res.status, type: res.headers.get('content-type'), headers: res.headers, text: await res.text() };
}

test('the embedded UI: every browser file, and only those', { skip, timeout: 60000 }, async () => {
  const server = new TailbusServer({ binary });
  servers.push(server);
  await server.start();

  const index = await get(server, '/', html);
  assert.equal(index.status, 200);
  assert.match(index.type, /^text\/html/);
  assert.equal(index.text, fs.readFileSync(path.join(WEB_DIR, 'index.html'), 'utf8'));
  assert.match(index.headers.get('content-security-policy'), /default-src 'self'/);
  assert.equal(index.headers.get('x-content-type-options'), 'nosniff');

  // API clients asking for "/" keep the JSON index.
  const api = await request('GET', `${server.httpUrl}/`);
  assert.equal(api.status, 200);
  assert.equal(api.json?.name, 'tailbus');

  for (const name of fs.readdirSync(WEB_DIR)) {
    if (!/\.(html|js|css|svg)$/.test(name)) continue;
    const r = await get(server, `/${name}`);
    assert.equal(r.status, 200, name);
    assert.equal(r.text, fs.readFileSync(path.join(WEB_DIR, name), 'utf8'), `${name} is the embedded copy of web/${name}`);
  }
  assert.match((await get(server, '/app.js')).type, /^text\/javascript/);
  assert.match((await get(server, '/style.css')).type, /^text\/css/);
  assert.equal((await get(server, '/tailbus.d.ts')).status, 200);

  for (const p of ['/package.json', '/package-lock.json', '/test/unit.test.mjs', '/node_modules/ws/index.js',
    '/ui_files.cc', '/CMakeLists.txt', '/nope.js', '/%2e%2e/CMakeLists.txt', '/.%2e/.%2e/etc/passwd']) {
    const r = await get(server, p);
    assert.equal(r.status, 404, p);
    assert.match(r.type, /json/, p);
  }
});

test('--ui-dir serves the UI from disk, and nothing outside it', { skip, timeout: 60000 }, async () => {
  const dir = tempDir('tailbus-ui-');
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>dev copy</title>\n');
  fs.writeFileSync(path.join(dir, 'app.js'), 'export const dev = true;\n');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'x.js'), 'nope\n');
  const secret = path.join(tempDir('tailbus-secret-'), 'secret.js');
  fs.writeFileSync(secret, 'secret\n');
  fs.symlinkSync(secret, path.join(dir, 'link.js'));

  const server = new TailbusServer({ binary, args: ['--ui-dir', dir] });
  servers.push(server);
  await server.start();
  assert.match((await get(server, '/', html)).text, /dev copy/);
  const app = await get(server, '/app.js');
  assert.equal(app.status, 200);
  assert.equal(app.text, 'export const dev = true;\n');
  // Edited on disk: served at once, no restart.
  fs.writeFileSync(path.join(dir, 'app.js'), 'export const dev = 2;\n');
  assert.equal((await get(server, '/app.js')).text, 'export const dev = 2;\n');
  for (const p of ['/sub/x.js', '/link.js', '/style.css', '/../secret.js']) {
    assert.equal((await get(server, p)).status, 404, p);
  }
});
