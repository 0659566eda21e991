// The header: connection status (visible text plus a polite live region that
// announces changes, not every second of a countdown), head offset, events/s.
import { getStatus } from './api.js';
import { formatInt } from './format.js';

const STATUS_POLL_MS = 2000;

/**
 * @param {object} o
 * @param {import('./tailbus').TailbusConnection} o.connection the app's main connection
 */
export function startStatusBar({ connection }) {
  const box = document.getElementById('conn-status');
  const text = document.getElementById('conn-text');
  const announcer = document.getElementById('conn-announcer');
  const headEl = document.getElementById('head-offset');
  const epsEl = document.getElementById('events-per-second');

  let status = { state: connection.state };
  let countdown = null;
  let lastAnnounced = '';
  let head = null;
  let samples = []; // [{t, head}] for events/s

  const announce = (msg) => {
    if (msg === lastAnnounced) return;
    lastAnnounced = msg;
    announcer.textContent = msg;
  };

  function render() {
    let label;
    switch (status.state) {
      case 'connected':
        label = 'Connected';
        break;
      case 'reconnecting': {
        const left = Math.max(0, Math.ceil(((status.retryAt ?? Date.now()) - Date.now()) / 1000));
        label = left > 0 ? `Reconnecting in ${left} s` : 'Reconnecting…';
        break;
      }
      case 'closed':
        label = 'Disconnected';
        break;
      default:
        label = 'Connecting…';
    }
    text.textContent = label;
    box.dataset.state = status.state ?? 'connecting';
    box.title = status.state === 'reconnecting' && status.code ? `connection lost (code ${status.code})` : '';
  }

  connection.on('status', (s) => {
    status = s;
    clearInterval(countdown);
    countdown = null;
    if (s.state === 'reconnecting') {
      countdown = setInterval(render, 250);
      if (s.attempt === 1) announce('Connection to the server lost. Reconnecting.');
    } else if (s.state === 'connected') {
      announce('Connected to the server.');
    } else if (s.state === 'closed') {
      announce(`Disconnected from the server${s.reason ? `: ${s.reason}` : ''}.`);
    }
    render();
  });

  const setHead = (h) => {
    if (typeof h !== 'number') return;
    if (head == null || h > head) head = h;
    headEl.textContent = formatInt(head);
    headEl.dataset.head = String(head);
  };
  connection.on('hello', (hello) => setHead(hello.head));
  connection.on('caught_up', (f) => setHead(f.offset));
  connection.on('batch', (events) => setHead(events[events.length - 1].offset));
  connection.on('reset', () => {
    head = null;
    samples = [];
  });

  async function poll() {
    try {
      const s = await getStatus();
      if (typeof s?.head === 'number') {
        const now = performance.now();
        samples.push({ t: now, head: s.head });
        while (samples.length > 2 && now - samples[0].t > 10000) samples.shift();
        if (samples.length >= 2) {
          const a = samples[0];
          const b = samples[samples.length - 1];
          const rate = b.head >= a.head && b.t > a.t ? ((b.head - a.head) * 1000) / (b.t - a.t) : 0;
          epsEl.textContent = rate >= 100 ? formatInt(Math.round(rate)) : rate.toFixed(1);
        }
        if (head != null && s.head < head) head = null; // another store now
        setHead(s.head);
      }
    } catch {
      epsEl.textContent = '—';
      samples = [];
    }
  }
  render();
  poll();
  setInterval(poll, STATUS_POLL_MS);
  return { get head() { return head; } };
}
