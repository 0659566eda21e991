// Formatting and classification of events (pure; no DOM, usable in Node tests).

/** Statuses that count as failures (as the server counts `error_count`). */
export const ERROR_STATUSES = ['error', 'failed', 'timeout'];
/** Event types that are failures: `error` (background §1) and §2's `*_failed`. */
export const ERROR_EVENT_TYPES = ['error', 'processing_failed', 'tool_failed'];

/** True when the event reports a failure. */
export function isErrorEvent(e) {
  return ERROR_EVENT_TYPES.includes(e.event_type) || ERROR_STATUSES.includes(e.status);
}

/** Milliseconds since the epoch of an event's own timestamp (NaN when absent). */
export function eventTime(e) {
  if (typeof e.timestamp === 'number') return e.timestamp;
  return typeof e.timestamp === 'string' ? Date.parse(e.timestamp) : NaN;
}

const numberFormat = new Intl.NumberFormat('en-US');

/** 12345 → "12,345"; absent → "". */
export function formatInt(n) {
  return typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '';
}

/** 85 → "85 ms", 1234 → "1.23 s", 75000 → "1 m 15 s", 7.5e6 → "2 h 05 m". */
export function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '';
  if (ms === 0) return '0 ms';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.round(s / 60);
  if (m < 48 * 60) return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
  return `${Math.round(m / 1440)} d`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Local wall-clock time with milliseconds: "14:03:07.123" (date prefixed when not today). */
export function formatClock(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  const today = new Date(now);
  if (d.toDateString() === today.toDateString()) return t;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}`;
}

/** "just now", "5 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function formatAgo(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return '';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** "+1.234 s" relative to a start time. */
export function formatOffsetTime(ms, startMs) {
  if (!Number.isFinite(ms) || !Number.isFinite(startMs)) return '';
  const d = ms - startMs;
  if (d < 60000) return `+${(d / 1000).toFixed(3)} s`;
  return `+${formatDuration(d)}`;
}

/** Short text for any JSON value (for table cells and previews). */
export function previewValue(v, max = 120) {
  let s;
  if (v == null) return '';
  if (typeof v === 'string') s = v;
  else {
    try {
      s = JSON.stringify(v);
    } catch {
      s = String(v);
    }
  }
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Pretty JSON for a details view. */
export function prettyJson(v) {
  if (typeof v === 'string') {
    try {
      return JSON.stringify(JSON.parse(v), null, 2);
    } catch {
      return v;
    }
  }
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
}

/** "1 event", "2 events", "1,234 events". */
export function plural(n, one, many = `${one}s`) {
  return `${formatInt(n)} ${n === 1 ? one : many}`;
}

/** Splits "a, b,,c " into ["a","b","c"] (deduplicated, order kept). */
export function splitList(text) {
  const out = [];
  for (const part of String(text ?? '').split(/[,\n]/)) {
    const t = part.trim();
    if (t && !out.includes(t)) out.push(t);
  }
  return out;
}
