// End to end: the UI served by a REAL `tailbus serve`, driven in headless
// Debian Chromium (/usr/bin/chromium) by playwright-core. Covers the live feed
// (events published over HTTP appear; a filter narrows it; JSON expands), the
// sessions list (search, delete with confirmation), the session view (a tool
// call paired with its result, streamed reply assembled), replay (plays in
// order; steps), alerts (an error alert fires and links to its session), a
// server stop/restart (the page shows reconnecting, then connected, and the
// rendered offsets have no gap and no duplicate), and an axe-core scan of every
// view (no serious or critical violation). Screenshots go to
// $TAILBUS_SCREENSHOT_DIR (default build/screenshots).
//
// Every wait polls the DOM with a deadline; nothing asserts on timing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { REPO_DIR, TailbusServer, serverBinary, tempDir } from './harness.mjs';

const require = createRequire(import.meta.url);
const CHROMIUM = process.env.TAILBUS_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.TAILBUS_SCREENSHOT_DIR || path.join(REPO_DIR, 'build', 'screenshots');
const binary = serverBinary();
// Without a server binary (a plain `node --test` in web/) the test is skipped;
// under ctest the binary is always given, and a missing browser is a failure
// (web/test/deps.sh installs it) unless TAILBUS_SKIP_BROWSER=1.
const skip = !binary
  ? 'no tailbus binary (set TAILBUS_BINARY)'
  : !fs.existsSync(CHROMIUM) && process.env.TAILBUS_SKIP_BROWSER === '1'
    ? `no browser at ${CHROMIUM}`
    : false;
const WAIT = 20000;
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let server;
let context;
let page;
const pageErrors = [];

before(async () => {
  if (skip) return;
  assert.ok(fs.existsSync(CHROMIUM), `no browser at ${CHROMIUM}: run web/test/deps.sh (apt-get install chromium)`);
  fs.mkdirSync(SHOTS, { recursive: true });
  server = new TailbusServer({ binary });
  await server.start();
  context = await chromium.launchPersistentContext(tempDir('tailbus-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // axe-core as an init script: not subject to the page's Content-Security-Policy,
  // which stays on (a violation by the UI shows as a console error, failing the test).
  await context.addInitScript({ content: axeSource });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(m.text())) pageErrors.push(m.text());
  });
});

after(async () => {
  await context?.close();
  await server?.stop({ signal: 'SIGKILL' });
});

// ---- helpers -----------------------------------------------------------------------

const T0 = Date.now() - 120000;
const at = (ms) => new Date(T0 + ms).toISOString();

/** The demo conversation of background §1 and a failing job of §2. */
function seedEvents() {
  return [
    { session_id: 'chat-42', event_type: 'message', content: 'What is the weather in Paris?', timestamp: at(0) },
    { session_id: 'chat-42', event_type: 'openai_call', model: 'gpt-4o', timestamp: at(100) },
    { session_id: 'chat-42', event_type: 'openai_response', model: 'gpt-4o', prompt_tokens: 812, completion_tokens: 64, duration_ms: 850, timestamp: at(950) },
    { session_id: 'chat-42', event_type: 'tool_call', tool_call_id: 'call_1', tool_name: 'weather', arguments: { city: 'Paris' }, timestamp: at(1000) },
    { session_id: 'receipt-7', event_type: 'processing_started', message: 'receipt uploaded', timestamp: at(1100) },
    { session_id: 'chat-42', event_type: 'tool_result', tool_call_id: 'call_1', tool_name: 'weather', result: { temp_c: 18, sky: 'clear' }, status: 'ok', duration_ms: 420, timestamp: at(1420) },
    { session_id: 'chat-42', event_type: 'assistant', streaming: true, content: 'It is ', timestamp: at(1500) },
    { session_id: 'chat-42', event_type: 'assistant', streaming: true, content: '18 °C ', timestamp: at(1550) },
    { session_id: 'chat-42', event_type: 'assistant', streaming: true, content: 'and clear in Paris.', timestamp: at(1600) },
    { session_id: 'chat-42', event_type: 'assistant', streaming: false, content: 'It is 18 °C and clear in Paris.', timestamp: at(1650) },
    { session_id: 'receipt-7', event_type: 'tool_started', tool_name: 'ocr', timestamp: at(1700) },
    { session_id: 'receipt-7', event_type: 'tool_failed', tool_name: 'ocr', status: 'failed', error: 'timeout reading page 3', duration_ms: 3000, timestamp: at(4700) },
    { session_id: 'receipt-7', event_type: 'error', error: 'pipeline aborted', timestamp: at(4800) },
  ];
}

const feedOffsets = () => page.$$eval('.view-feed .feed-body [role=row][data-offset]', (rows) => rows.map((r) => Number(r.dataset.offset)));

async function waitForFeed(predicate, arg, message) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: WAIT, polling: 50 });
  } catch (err) {
    throw new Error(`${message}: ${err.message}\nrendered offsets: ${JSON.stringify(await feedOffsets().catch(() => null))}`);
  }
}

/** Every offset from..to shown exactly once, newest first. */
async function expectFeedExactly(from, to) {
  await waitForFeed(
    ([a, b]) => {
      const rows = [...document.querySelectorAll('.view-feed .feed-body [role=row][data-offset]')].map((r) => Number(r.dataset.offset));
      return rows.length === b - a + 1 && rows[0] === b && rows[rows.length - 1] === a;
    },
    [from, to],
    `feed shows offsets ${from}..${to}`,
  );
  const offsets = await feedOffsets();
  const expected = [];
  for (let o = to; o >= from; o--) expected.push(o);
  assert.deepEqual(offsets, expected, 'each offset once, newest first, no gap');
}

async function shot(name, { fullPage = false } = {}) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
}

/** Runs axe-core on the page; fails on serious or critical violations. */
async function expectAccessible(label) {
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'], runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${label}: axe serious/critical violations\n${JSON.stringify(bad, null, 2)}`);
  return result;
}

async function nav(name) {
  await page.click(`[data-nav=${name}]`);
}

// ---- the scenario ------------------------------------------------------------------

test('the web UI end to end against a real server', { skip, timeout: 240000 }, async (t) => {
  const seeded = await server.publish(seedEvents());
  assert.deepEqual(seeded, Array.from({ length: 13 }, (_, i) => i + 1));
  let head = 13;

  await t.test('the page is served by tailbus and connects', async () => {
    const res = await page.goto(`${server.httpUrl}/`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'], /text\/html/);
    await page.waitForSelector('#conn-status[data-state=connected]');
    assert.equal(await page.textContent('#conn-text'), 'Connected');
    await expectFeedExactly(1, head);
    await page.waitForFunction(() => document.getElementById('head-offset').dataset.head === '13');
    const client = await fetch(`${server.httpUrl}/tailbus.js`);
    assert.equal(client.status, 200);
    assert.match(await client.text(), /export function connect/);
  });

  await t.test('events published over HTTP appear live in the feed', async () => {
    const more = await server.publish([
      { session_id: 'chat-42', event_type: 'openai_response', model: 'gpt-4o-mini', total_tokens: 2500, timestamp: at(5000) },
      { session_id: 'batch-9', event_type: 'tool_call', tool_call_id: 'b1', tool_name: 'search', arguments: { q: 'tailbus' }, timestamp: at(5100) },
    ]);
    head = more.at(-1);
    await expectFeedExactly(1, head);
    const row = page.locator('.view-feed .feed-body [role=row][data-offset="14"]');
    await assert.doesNotReject(row.getByText('gpt-4o-mini').waitFor());
    assert.equal((await row.locator('[role=cell]').nth(9).textContent()).trim(), '2,500');
    await shot('feed');
    await expectAccessible('live feed');
  });

  await t.test('the JSON of an event expands from the keyboard', async () => {
    const toggle = page.locator('.view-feed .feed-body [role=row][data-offset="4"] button[aria-expanded]');
    await toggle.focus();
    await page.keyboard.press('Enter');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    const pre = page.locator(`#${await toggle.getAttribute('aria-controls')}`);
    assert.match(await pre.textContent(), /"tool_call_id": "call_1"/);
    await page.keyboard.press('Enter');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  });

  await t.test('a server-side filter narrows the feed', async () => {
    await page.fill('input[name=types]', 'tool_call, tool_result');
    await page.click('.filter-form button[type=submit]');
    await waitForFeed(() => {
      const rows = [...document.querySelectorAll('.view-feed .feed-body [role=row][data-offset]')].map((r) => Number(r.dataset.offset));
      return rows.join() === '15,6,4';
    }, null, 'only tool_call / tool_result');
    assert.match(page.url(), /#\/feed\?types=tool_call%2Ctool_result/);

    await page.click('.filter-form button:has-text("Clear")');
    await page.check('input[name=errors]'); // applies at once
    await waitForFeed(() => [...document.querySelectorAll('.view-feed .feed-body [role=row][data-offset]')].map((r) => r.dataset.offset).join() === '13,12',
      null, 'errors only');
    await shot('feed-filtered');

    await page.fill('input[name=cost]', '1000');
    await page.uncheck('input[name=errors]');
    await page.click('.filter-form button[type=submit]');
    await waitForFeed(() => [...document.querySelectorAll('.view-feed .feed-body [role=row][data-offset]')].map((r) => r.dataset.offset).join() === '14',
      null, 'cost above 1000');
    await page.click('.filter-form button:has-text("Clear")');
    await expectFeedExactly(1, head);
  });

  await t.test('pause keeps the rows; resume catches up', async () => {
    await page.click('.feed-status button');
    const more = await server.publish([{ session_id: 'batch-9', event_type: 'note', timestamp: at(5200) }]);
    await page.waitForFunction(() => /Resume \(1 new\)/.test(document.querySelector('.feed-status button').textContent));
    assert.equal((await feedOffsets())[0], head, 'paused: the new event is not rendered');
    await page.click('.feed-status button');
    head = more[0];
    await expectFeedExactly(1, head);
  });

  await t.test('sessions: listed newest first, searchable, deletable with confirmation', async () => {
    const tmp = await server.publish([{ session_id: 'scratch-1', event_type: 'note', timestamp: at(5300) }]);
    head = tmp[0];
    await nav('sessions');
    await page.waitForFunction(() => document.querySelector('.view-sessions')?.dataset.count === '4');
    const ids = await page.$$eval('.view-sessions tbody tr', (rows) => rows.map((r) => r.dataset.session));
    assert.deepEqual(ids, ['scratch-1', 'batch-9', 'chat-42', 'receipt-7']);
    const chat = page.locator('.view-sessions tr[data-session="chat-42"] td');
    assert.equal((await chat.nth(2).textContent()).trim(), '10', 'events');
    assert.equal((await chat.nth(3).textContent()).trim(), '3,376', 'cost tokens');
    assert.equal((await page.locator('.view-sessions tr[data-session="receipt-7"] td').nth(4).textContent()).trim(), '2', 'errors');
    await shot('sessions');
    await expectAccessible('sessions');

    await page.fill('input[type=search]', 'chat');
    await page.waitForFunction(() => document.querySelector('.view-sessions')?.dataset.count === '1');

    await page.fill('input[type=search]', 'scratch');
    await page.waitForFunction(() => document.querySelector('.view-sessions')?.dataset.count === '1');
    await page.click('.view-sessions tr[data-session="scratch-1"] button.danger');
    await page.waitForSelector('dialog[open]');
    await shot('sessions-delete');
    await expectAccessible('delete dialog');
    await page.click('dialog[open] button[value=delete]');
    await page.waitForFunction(() => document.querySelector('.view-sessions')?.dataset.count === '0');
    await page.fill('input[type=search]', '');
    await page.waitForFunction(() => document.querySelector('.view-sessions')?.dataset.count === '3');
  });

  await t.test('session view: tool call paired with its result, reply assembled, live', async () => {
    await page.click('.view-sessions a[href="#/sessions/chat-42"]');
    const tool = page.locator('.view-session li[data-kind=tool][data-tool-call-id=call_1]');
    await tool.waitFor();
    await page.waitForFunction(() => document.querySelector('.view-session')?.dataset.caughtUp === 'true');
    assert.equal(await tool.getAttribute('data-paired'), 'true');
    assert.equal(await tool.getAttribute('data-offsets'), '4 6');
    assert.match(await tool.textContent(), /"city": "Paris"/);
    assert.match(await tool.textContent(), /"temp_c": 18/);
    assert.equal((await tool.locator('.tl-duration').textContent()).trim(), '420 ms');
    const reply = page.locator('.view-session li[data-kind=assistant]');
    assert.equal(await reply.count(), 1);
    assert.equal((await reply.locator('.tl-text').textContent()).trim(), 'It is 18 °C and clear in Paris.');
    assert.equal(await reply.getAttribute('data-offsets'), '7 8 9 10');
    const llm = page.locator('.view-session li[data-kind=llm]').first();
    assert.match(await llm.textContent(), /876 tokens/);
    // No other session's event.
    const offsets = await page.$$eval('.view-session .timeline:not(.replay-list) li', (lis) => lis.flatMap((li) => li.dataset.offsets.split(' ').map(Number)));
    assert.deepEqual(offsets, [1, 2, 3, 4, 6, 7, 8, 9, 10, 14]);

    const live = await server.publish([{ session_id: 'chat-42', event_type: 'message', content: 'And tomorrow?', timestamp: at(6000) }]);
    head = live[0];
    await page.locator(`.view-session li[data-offset="${live[0]}"]`).waitFor();
    await shot('session', { fullPage: true });
    await expectAccessible('session timeline');
  });

  await t.test('replay plays the session in order, steps and jumps', async () => {
    await page.click('[role=tab][data-tab=replay]');
    await page.check('input[type=radio][value=max]');
    await page.evaluate(() => {
      window.__replayed = [];
      const list = document.querySelector('.replay-list');
      new MutationObserver((records) => {
        for (const r of records) for (const n of r.addedNodes) if (n.dataset?.offset) window.__replayed.push(Number(n.dataset.offset));
      }).observe(list, { childList: true });
    });
    await page.click('[data-action=play]');
    await page.waitForFunction(() => {
      const p = document.querySelector('[role=tabpanel][data-position]');
      return p && p.dataset.position === '11' && p.dataset.playing === 'false';
    });
    // Items appear in order; an item re-rendered in place (a tool call getting
    // its result) is re-added where it was, so the sequence never goes back.
    const replayed = await page.evaluate(() => window.__replayed);
    for (let i = 1; i < replayed.length; i++) assert.ok(replayed[i] >= replayed[i - 1], `in order: ${replayed}`);
    assert.deepEqual([...new Set(replayed)], [1, 2, 4, 7, 14, head]);
    const items = await page.$$eval('.replay-list li', (lis) => lis.map((li) => li.dataset.offsets));
    assert.deepEqual(items, ['1', '2 3', '4 6', '7 8 9 10', '14', String(head)]);

    // At 10× too (the session spans a few seconds; idle gaps are capped).
    await page.check('input[type=radio][value="10"]');
    await page.click('[data-action=play]'); // at the end: plays again from the start
    await page.waitForFunction(() => {
      const p = document.querySelector('[role=tabpanel][data-position]');
      return p.dataset.position === '11' && p.dataset.playing === 'false';
    }, null, { timeout: 30000 });

    await page.click('[data-action=restart]');
    for (let i = 0; i < 3; i++) await page.click('[data-action=step]');
    await page.waitForFunction(() => document.querySelector('[role=tabpanel][data-position]').dataset.position === '3');
    assert.deepEqual(await page.$$eval('.replay-list li', (lis) => lis.map((li) => li.dataset.offsets)), ['1', '2 3']);
    const slider = page.locator('.replay-position input[type=range]');
    await slider.focus();
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(() => document.querySelector('[role=tabpanel][data-position]').dataset.position === '4');
    assert.deepEqual(await page.$$eval('.replay-list li', (lis) => lis.map((li) => li.dataset.offsets)), ['1', '2 3', '4']);
    await page.click('[data-action=step-back]');
    await page.waitForFunction(() => document.querySelector('[role=tabpanel][data-position]').dataset.position === '3');
    await slider.focus();
    await page.keyboard.press('End');
    await page.waitForFunction(() => document.querySelector('[role=tabpanel][data-position]').dataset.position === '11');
    await page.locator('.replay-list li[data-kind=tool][data-paired=true]').waitFor();
    await slider.evaluate((el) => {
      el.value = '7';
      el.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await page.waitForFunction(() => document.querySelector('[role=tabpanel][data-position]').dataset.position === '7');
    await shot('replay', { fullPage: true });
    await expectAccessible('replay');
  });

  let alertOffset;
  await t.test('an error alert fires on a new error and links to its session', async () => {
    await nav('alerts');
    await page.check('input[name=kind][value=error]');
    await page.fill('input[name=name]', 'Any error');
    await page.click('.alert-form button[type=submit]');
    await page.waitForFunction(() => /watching/.test(document.querySelector('.view-alerts .card')?.textContent ?? ''));
    const fired = await server.publish([
      { session_id: 'chat-42', event_type: 'tool_result', tool_call_id: 'call_2', tool_name: 'weather', status: 'timeout', error: 'weather API timed out', timestamp: at(7000) },
    ]);
    alertOffset = fired[0];
    head = alertOffset;
    const row = page.locator(`.view-alerts tbody tr[data-offset="${alertOffset}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /Any error/);
    assert.equal(await row.locator('a').getAttribute('href'), `#/sessions/chat-42?offset=${alertOffset}`);
    assert.equal(await page.locator('.view-alerts tbody tr').count(), 1, 'only new events fire');
    await shot('alerts', { fullPage: true });
    await expectAccessible('alerts');

    // While another view shows, a new error raises the badge.
    await nav('feed');
    const second = await server.publish([{ session_id: 'receipt-7', event_type: 'error', error: 'retry failed', timestamp: at(7100) }]);
    head = second[0];
    await page.waitForFunction(() => !document.getElementById('alerts-badge').hidden && document.getElementById('alerts-badge').textContent === '1');

    // The fired alert's link opens the session at that event.
    await nav('alerts');
    await page.click(`.view-alerts tbody tr[data-offset="${alertOffset}"] a`);
    await page.waitForSelector(`.view-session li.is-target[data-offset="${alertOffset}"]`);
    assert.ok(await page.locator(`.view-session li[data-offset="${alertOffset}"]`).evaluate((li) => li.classList.contains('is-error')));
  });

  await t.test('the server restarts: reconnecting, then connected, no event missing or repeated', async () => {
    await nav('feed');
    await expectFeedExactly(1, head);
    await server.stop({ signal: 'SIGTERM' });
    await page.waitForSelector('#conn-status[data-state=reconnecting]');
    assert.match(await page.textContent('#conn-text'), /^Reconnecting/);
    assert.match(await page.textContent('#conn-announcer'), /Reconnecting/);
    await shot('reconnecting');

    await server.start(); // same database, same port
    // Published before the page has reconnected (its retry waits up to a second): caught up on resume.
    const during = await server.publish(Array.from({ length: 20 }, (_, i) => ({ session_id: `after-restart-${i % 3}`, event_type: 'tick', n: i })));
    await page.waitForSelector('#conn-status[data-state=connected]');
    assert.match(await page.textContent('#conn-announcer'), /Connected/);
    const live = await server.publish(Array.from({ length: 5 }, (_, i) => ({ session_id: 'after-restart-0', event_type: 'tock', n: i })));
    head = live.at(-1);
    assert.equal(during[0], seeded.length + 8, 'offsets continue across the restart');
    await expectFeedExactly(1, head);
    // The alerts resumed too: the second error fired exactly once.
    await nav('alerts');
    assert.equal(await page.locator('.view-alerts tbody tr').count(), 2);
  });

  await t.test('dark colour scheme passes the same accessibility scan', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await nav('feed');
    await expectFeedExactly(1, head);
    await expectAccessible('feed (dark)');
    await shot('feed-dark');
    await page.goto(`${server.httpUrl}/#/sessions/chat-42`);
    await page.locator('.view-session li[data-kind=tool]').first().waitFor();
    await expectAccessible('session (dark)');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await t.test('keyboard: the first Tab reaches the skip link, which moves focus to the content', async () => {
    await page.goto(`${server.httpUrl}/#/feed`);
    await page.reload();
    await page.waitForSelector('#conn-status[data-state=connected]');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.equal(outline, 'solid', 'visible focus');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
    assert.match(page.url(), /#\/feed$/, 'the skip link does not change the route');
  });

  assert.deepEqual(pageErrors, [], 'no errors in the page');
});

test('with --auth-secret-file the UI takes ?token= and explains a 401 or 403 instead of an empty page', { skip, timeout: 120000 }, async () => {
  const { execFileSync } = await import('node:child_process');
  const secretFile = path.join(tempDir(), 'secret');
  fs.writeFileSync(secretFile, 'e2e-test-secret-0123456789abcdefghijkl\n', { mode: 0o600 });
  const mint = (sessions) =>
    execFileSync(binary, ['token', '--secret-file', secretFile, '--sub', 'e2e', '--sessions', sessions, '--scope', 'subscribe', '--ttl', '10m'])
      .toString()
      .trim();
  const auth = new TailbusServer({ binary, args: ['--auth-secret-file', secretFile] });
  await auth.start();
  const p = await context.newPage();
  p.setDefaultTimeout(WAIT);
  try {
    const banner = p.locator('#banner');
    // No token: the page loads (public files), the feed is refused with 401.
    await p.goto(`${auth.httpUrl}/#/feed`);
    await banner.waitFor({ state: 'visible' });
    await p.waitForFunction(() => /Not authorised \(401/.test(document.getElementById('banner').textContent));
    assert.match(await banner.textContent(), /\?token=YOUR_TOKEN/);

    // A token for one session cannot open the all-session feed: 403, and why.
    await p.goto(`${auth.httpUrl}/?token=${mint('s1')}#/feed`);
    await p.waitForFunction(() => /Access denied \(403/.test(document.getElementById('banner').textContent));
    assert.match(await banner.textContent(), /sessions \["\*"\]/);

    // A token for every session: connected, no banner; the token is on every request.
    const wsUrls = [];
    p.on('websocket', (ws) => wsUrls.push(ws.url()));
    await p.goto(`${auth.httpUrl}/?token=${mint('*')}#/feed`);
    await p.waitForSelector('#conn-status[data-state=connected]');
    assert.equal(await banner.isHidden(), true);
    assert.ok(wsUrls.length > 0 && wsUrls.every((u) => new URL(u).searchParams.get('token')), `token on every WebSocket: ${wsUrls}`);
  } finally {
    await p.close();
    await auth.stop({ signal: 'SIGKILL' });
  }
});
