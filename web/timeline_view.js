// Renders a Timeline (timeline.js) into an <ol>, incrementally: new items are
// appended, changed items (a streaming bubble growing, a tool call getting its
// result) are re-rendered in place, at most once per animation frame.
import { clear, frameScheduler, h } from './dom.js';
import { formatClock, formatDuration, formatInt, formatOffsetTime, prettyJson, previewValue } from './format.js';

const LONG_TEXT = 600;

function block(label, value) {
  if (value === undefined) return null;
  const text = typeof value === 'string' ? value : prettyJson(value);
  const long = text.length > LONG_TEXT || text.split('\n').length > 12;
  return h('div', null,
    h('div', { class: 'io-label' }, label),
    h('pre', { tabindex: long ? '0' : null }, text));
}

function statusBadge(status, error) {
  if (!status) return null;
  return h('span', { class: error ? 'badge err' : status === 'running' ? 'badge' : 'badge ok' }, status);
}

function rawEvents(item) {
  const details = h('details', { class: 'raw' },
    h('summary', null, item.events.length === 1 ? `Event ${item.events[0].offset} (JSON)` : `${item.events.length} events (JSON)`));
  details.addEventListener('toggle', () => {
    if (details.open && details.childElementCount === 1) {
      details.append(h('pre', { tabindex: '0' }, item.events.map((e) => prettyJson(e)).join('\n')));
    }
  }, { once: false });
  return details;
}

function titleOf(item) {
  const first = item.events[0];
  switch (item.kind) {
    case 'user':
      return [h('span', null, 'User')];
    case 'assistant': {
      const deltas = item.events.filter((e) => e.streaming === true || e.event_type === 'token').length;
      const label = deltas === 1 ? '1 delta' : `${deltas} deltas`;
      return [
        h('span', null, 'Assistant'),
        item.streaming ? h('span', { class: 'muted' }, `streaming · ${label}`) : deltas > 0 ? h('span', { class: 'muted' }, label) : null,
      ];
    }
    case 'tool':
      return [
        h('span', null, `Tool ${item.toolName || '(unnamed)'}`),
        statusBadge(item.status, item.error),
        item.durationMs != null ? h('span', { class: 'tl-duration muted' }, formatDuration(item.durationMs)) : null,
        item.progress != null && item.status === 'running' ? h('span', { class: 'muted' }, `${item.progress}%`) : null,
        item.callId ? h('span', { class: 'muted mono' }, item.callId) : null,
      ];
    case 'llm': {
      const t = item.tokens;
      const tokenText = t
        ? [t.total != null ? `${formatInt(t.total)} tokens` : null,
          t.prompt != null || t.completion != null ? `(prompt ${formatInt(t.prompt ?? 0)} · completion ${formatInt(t.completion ?? 0)})` : null]
          .filter(Boolean).join(' ')
        : 'waiting for the response…';
      return [
        h('span', null, `LLM ${item.model || ''}`.trim()),
        h('span', { class: 'muted tl-tokens' }, tokenText),
        item.durationMs != null ? h('span', { class: 'tl-duration muted' }, formatDuration(item.durationMs)) : null,
      ];
    }
    case 'error':
      return [h('span', null, 'Error'), h('span', { class: 'muted type' }, first.event_type)];
    default:
      return [
        h('span', { class: 'type' }, first.event_type ?? 'event'),
        first.tool_name ? h('span', { class: 'muted' }, first.tool_name) : null,
        statusBadge(first.status, item.error),
        typeof first.duration_ms === 'number' ? h('span', { class: 'muted' }, formatDuration(first.duration_ms)) : null,
      ];
  }
}

function contentOf(item) {
  const first = item.events[0];
  switch (item.kind) {
    case 'user':
    case 'assistant':
      return h('p', { class: item.streaming ? 'tl-text typing' : 'tl-text' }, item.text || '');
    case 'tool':
      return h('div', { class: 'tl-io' },
        block('Arguments', item.args) ?? h('div', { class: 'muted' }, item.orphanResult ? 'no matching tool_call' : ''),
        item.paired || item.orphanResult ? block('Result', item.result ?? null) : h('div', { class: 'muted' }, 'running…'));
    case 'error':
      return h('p', { class: 'tl-text' }, previewValue(item.message, 2000));
    case 'llm':
      return null;
    default: {
      const text = first.message ?? first.content ?? first.output_summary ?? first.input_summary ?? (first.progress != null ? `progress ${first.progress}%` : null);
      return text != null ? h('p', { class: 'tl-text' }, previewValue(text, 2000)) : null;
    }
  }
}

/** The <li> of one item. */
export function renderItem(item, startTime) {
  const first = item.events[0];
  const li = h('li', {
    class: `tl-item tl-${item.kind}${item.error ? ' is-error' : ''}`,
    dataset: {
      offset: item.id,
      offsets: item.events.map((e) => e.offset).join(' '),
      kind: item.kind,
      toolCallId: item.callId ?? null,
      paired: item.kind === 'tool' ? String(!!item.paired) : null,
    },
  },
  h('div', { class: 'tl-meta', title: first.timestamp ?? '' },
    formatOffsetTime(item.start, startTime), h('br'), formatClock(item.start)),
  h('div', { class: 'tl-body' },
    h('div', { class: 'tl-title' }, titleOf(item)),
    contentOf(item),
    rawEvents(item)),
  h('div', { class: 'tl-meta tl-cost' },
    item.cost ? `+${formatInt(item.cost)} tokens` : '', item.cost ? h('br') : null,
    h('span', { title: 'session cost so far' }, `Σ ${formatInt(item.costTotal)}`)));
  return li;
}

/**
 * Keeps `list` (an <ol>) in step with a Timeline.
 * apply(changes) queues work; rendering happens once per animation frame.
 */
export class TimelineView {
  constructor(list, timeline) {
    this.list = list;
    this.timeline = timeline;
    this.elements = new Map(); // item id → <li>
    this.dirty = new Set();
    this.schedule = frameScheduler(() => this.flush());
  }

  apply(changes) {
    for (const item of changes.added) this.dirty.add(item);
    for (const item of changes.updated) this.dirty.add(item);
    if (this.dirty.size) this.schedule();
  }

  /** Renders pending changes now. */
  flush() {
    if (this.dirty.size === 0) return;
    const start = this.timeline.firstTime;
    const frag = document.createDocumentFragment();
    for (const item of this.dirty) {
      const old = this.elements.get(item.id);
      // Keep an open JSON disclosure open across re-renders.
      const wasOpen = old?.querySelector('details.raw')?.open;
      const li = renderItem(item, start);
      if (wasOpen) li.querySelector('details.raw').open = true;
      this.elements.set(item.id, li);
      if (old) old.replaceWith(li);
      else frag.append(li);
    }
    this.dirty.clear();
    this.list.append(frag);
  }

  /** Replaces everything with a new timeline. */
  reset(timeline) {
    this.timeline = timeline;
    this.elements.clear();
    this.dirty.clear();
    clear(this.list);
    for (const item of timeline.items) this.dirty.add(item);
    this.flush();
  }

  /** The <li> holding the event with this offset, if rendered. */
  elementForOffset(offset) {
    const item = this.timeline.items.find((i) => i.events.some((e) => e.offset === offset));
    return item ? this.elements.get(item.id) : null;
  }
}
