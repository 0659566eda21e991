// The live feed: every session's events as they are committed, newest first.
// Server-side filter controls, pause (keeps the position) / resume (catches
// up), at most one render per animation frame, at most ROW_CAP rows kept.
import { clear, debounce, frameScheduler, h, uid } from './dom.js';
import {
  buildFilter,
  controlsToParams,
  describeControls,
  emptyControls,
  paramsToControls,
} from './filters.js';
import {
  eventTime,
  formatClock,
  formatDuration,
  formatInt,
  isErrorEvent,
  prettyJson,
  previewValue,
  splitList,
} from './format.js';

export const ROW_CAP = 2000;
/** How many offsets of history a (re)filtered feed starts from. */
export const BACKLOG_OFFSETS = 1000;

/** The feed's data, alive for the whole page (also while another view shows). */
export class FeedStore {
  constructor(connection, { cap = ROW_CAP } = {}) {
    this.connection = connection;
    this.cap = cap;
    this.events = []; // shown, oldest first
    this.pending = []; // received while paused
    this.fresh = []; // shown but not yet rendered
    this.paused = false;
    this.controls = emptyControls();
    this.notice = '';
    this.generation = 0; // bumps when the list is replaced (filter change, reset)
    this.listeners = new Set();
    this.received = 0;
    connection.on('batch', (events) => this._onBatch(events));
    connection.on('reset', (r) => {
      this._clear();
      this.notice =
        r.reason === 'epoch_mismatch'
          ? 'The server now has a different database (epoch changed): the feed restarted from its beginning.'
          : `Events before offset ${r.earliest} are no longer retained: the feed continues from there.`;
      this._changed();
    });
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  _changed() {
    for (const fn of this.listeners) fn();
  }
  _clear() {
    this.events = [];
    this.pending = [];
    this.fresh = [];
    this.generation += 1;
  }

  _onBatch(events) {
    this.received += events.length;
    if (this.paused) {
      this.pending.push(...events);
      if (this.pending.length > this.cap) this.pending.splice(0, this.pending.length - this.cap);
    } else {
      this._show(events);
    }
    this._changed();
  }

  _show(events) {
    this.events.push(...events);
    this.fresh.push(...events);
    if (this.events.length > this.cap) this.events.splice(0, this.events.length - this.cap);
    if (this.fresh.length > this.cap) this.fresh.splice(0, this.fresh.length - this.cap);
  }

  /** Events received since the last call (oldest first), for incremental rendering. */
  takeFresh() {
    const f = this.fresh;
    this.fresh = [];
    return f;
  }

  pause() {
    this.paused = true;
    this._changed();
  }

  resume() {
    this.paused = false;
    const p = this.pending;
    this.pending = [];
    this._show(p);
    this._changed();
  }

  /** Applies new filter controls: the server filters; recent matching history is reloaded. */
  async setControls(controls, head) {
    this.controls = controls;
    this._clear();
    this.notice = '';
    this._changed();
    const after = typeof head === 'number' ? Math.max(0, head - BACKLOG_OFFSETS) : undefined;
    return this.connection.subscribe(buildFilter(controls), after === undefined ? {} : { after });
  }
}

/** Mounts the feed view; returns {unmount}. */
export function mountFeed(container, { store, getHead, route }) {
  // A filter in the URL (#/feed?types=…) wins over the current one.
  if (route.params.toString() !== '' && route.params.toString() !== controlsToParams(store.controls).toString()) {
    store.setControls(paramsToControls(route.params), getHead()).catch(() => {});
  }

  const ids = { types: uid('f'), tools: uid('f'), statuses: uid('f'), models: uid('f'), sessions: uid('f'), cost: uid('f'), errors: uid('f') };
  const input = (key, label, placeholder) =>
    h('div', { class: 'field' },
      h('label', { for: ids[key] }, label),
      h('input', { id: ids[key], name: key, type: 'text', placeholder, autocomplete: 'off', spellcheck: 'false' }));

  const form = h('form', { class: 'filter-form', 'aria-describedby': 'filter-help' },
    h('fieldset', null,
      h('legend', null, 'Server-side filter'),
      input('types', 'Event types', 'tool_call, tool_result'),
      input('tools', 'Tools', 'search'),
      input('statuses', 'Statuses', 'error, failed'),
      input('models', 'Models', 'gpt-4o'),
      input('sessions', 'Sessions', 'session id'),
      h('div', { class: 'field' },
        h('label', { for: ids.cost }, 'Cost above (tokens)'),
        h('input', { id: ids.cost, name: 'cost', type: 'number', min: '0', step: '1', inputmode: 'numeric' })),
      h('label', { class: 'check', for: ids.errors },
        h('input', { id: ids.errors, name: 'errors', type: 'checkbox' }), 'Errors only'),
      h('button', { type: 'submit', class: 'primary' }, 'Apply filter'),
      h('button', { type: 'button', onclick: () => apply(emptyControls()) }, 'Clear')),
    h('p', { id: 'filter-help', class: 'hint tight-top' },
      'Lists are comma separated. The server applies the filter before sending anything; the feed reloads recent matching events.'),
    h('p', { class: 'filter-json mono' }));
  const filterJson = form.querySelector('.filter-json');
  const formError = h('p', { class: 'error-text', role: 'alert' });

  function fillForm(c) {
    form.elements.types.value = c.types.join(', ');
    form.elements.tools.value = c.tools.join(', ');
    form.elements.statuses.value = c.statuses.join(', ');
    form.elements.models.value = c.models.join(', ');
    form.elements.sessions.value = c.sessions.join(', ');
    form.elements.cost.value = c.costAbove ?? '';
    form.elements.errors.checked = c.errorsOnly;
    filterJson.textContent = `filter: ${JSON.stringify(buildFilter(c))}`;
  }

  function readForm() {
    const cost = form.elements.cost.value.trim();
    let costAbove = null;
    if (cost !== '') {
      costAbove = Number(cost);
      if (!Number.isInteger(costAbove) || costAbove < 0) throw new Error('Cost above must be a whole number ≥ 0.');
    }
    return {
      types: splitList(form.elements.types.value),
      tools: splitList(form.elements.tools.value),
      statuses: splitList(form.elements.statuses.value),
      models: splitList(form.elements.models.value),
      sessions: splitList(form.elements.sessions.value),
      costAbove,
      errorsOnly: form.elements.errors.checked,
    };
  }

  async function apply(c) {
    formError.textContent = '';
    fillForm(c);
    const q = controlsToParams(c).toString();
    history.replaceState(null, '', `#/feed${q ? `?${q}` : ''}`);
    try {
      await store.setControls(c, getHead());
    } catch (err) {
      formError.textContent = `The server refused the filter: ${err.message}`;
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    try {
      apply(readForm());
    } catch (err) {
      formError.textContent = err.message;
    }
  });
  form.addEventListener('change', (ev) => {
    if (ev.target.type === 'checkbox') form.requestSubmit();
  });

  const pauseBtn = h('button', { type: 'button', 'aria-pressed': 'false', onclick: () => (store.paused ? store.resume() : store.pause()) }, 'Pause');
  const counts = h('span', { class: 'muted', id: 'feed-counts' });
  const notice = h('p', { class: 'hint', role: 'status' });
  // An ARIA table of divs: rows use `content-visibility: auto`, so the browser
  // skips style, layout and paint of the (up to ROW_CAP) rows out of view.
  const tbody = h('div', { role: 'rowgroup', class: 'feed-body' });
  const cols = ['Details', 'Offset', 'Time', 'Type', 'Session', 'Tool', 'Model', 'Status', 'Duration', 'Cost tokens', 'Summary'];
  const numeric = new Set(['Offset', 'Duration', 'Cost tokens']);
  const table = h('div', { role: 'table', class: 'feed-table', 'aria-label': 'Live events, newest first', 'aria-describedby': 'feed-counts' },
    h('div', { role: 'rowgroup', class: 'feed-head' }, h('div', { role: 'row', class: 'feed-row' },
      cols.map((c) => h('span', { role: 'columnheader', class: numeric.has(c) ? 'num' : null },
        c === 'Details' ? h('span', { class: 'visually-hidden' }, c) : c)))),
    tbody);
  const empty = h('p', { class: 'empty' }, 'Waiting for events… publish one with: ',
    h('code', null, `curl -X POST ${location.origin}/api/events -H 'content-type: application/json' -d '{"session_id":"demo","event_type":"hello"}'`));
  const wrap = h('div', { class: 'table-wrap feed-table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Live events (scrollable)' }, table);

  clear(container);
  container.append(
    h('div', { class: 'view-head' }, h('h1', null, 'Live feed'), h('span', { class: 'muted' }, 'all sessions')),
    form, formError,
    h('div', { class: 'feed-status' }, pauseBtn, counts),
    notice, empty, wrap);
  fillForm(store.controls);

  let rowCount = 0;
  let generation = -1;

  function row(e) {
    const err = isErrorEvent(e);
    const detailId = `ev-${e.offset}-json`;
    const toggle = h('button', {
      type: 'button', class: 'icon', 'aria-expanded': 'false', 'aria-controls': detailId,
      'aria-label': `Show the JSON of event ${e.offset}`, text: '▸',
    });
    const t = eventTime(e);
    const summary = e.error ?? e.content ?? e.message ?? e.output_summary ?? e.input_summary ?? e.result ?? e.arguments;
    const cell = (cls, ...children) => h('span', { role: 'cell', class: cls }, ...children);
    const tr = h('div', { role: 'row', class: err ? 'feed-row is-error' : 'feed-row', dataset: { offset: e.offset } },
      cell(null, toggle),
      cell('num mono', String(e.offset)),
      h('span', { role: 'cell', class: 'mono', title: e.timestamp ?? '' }, formatClock(t)),
      cell(null, h('span', { class: err ? 'badge err type' : 'type' }, e.event_type ?? '')),
      cell(null, e.session_id != null ? h('a', { href: `#/sessions/${encodeURIComponent(e.session_id)}?offset=${e.offset}` }, e.session_id) : ''),
      cell(null, e.tool_name ?? ''),
      cell(null, e.model ?? ''),
      cell(null, e.status ? h('span', { class: err ? 'badge err' : 'badge' }, e.status) : ''),
      cell('num', formatDuration(e.duration_ms)),
      cell('num', formatInt(e.cost_tokens)),
      cell('wrap', previewValue(summary, 100)));
    tr._event = e;
    return tr;
  }

  tbody.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button[aria-controls]');
    if (!btn) return;
    const tr = btn.closest('[role=row]');
    const open = btn.getAttribute('aria-expanded') === 'true';
    if (open) {
      document.getElementById(btn.getAttribute('aria-controls'))?.closest('[role=row]')?.remove();
      btn.setAttribute('aria-expanded', 'false');
      btn.textContent = '▸';
      btn.setAttribute('aria-label', `Show the JSON of event ${tr.dataset.offset}`);
    } else {
      const detail = h('div', { role: 'row', class: 'feed-detail' },
        h('span', { role: 'cell' }, h('pre', { id: btn.getAttribute('aria-controls'), tabindex: '0', 'aria-label': `JSON of event ${tr.dataset.offset}` }, prettyJson(tr._event))));
      tr.after(detail);
      btn.setAttribute('aria-expanded', 'true');
      btn.textContent = '▾';
      btn.setAttribute('aria-label', `Hide the JSON of event ${tr.dataset.offset}`);
    }
  });

  function trimRows() {
    while (rowCount > store.cap) {
      const last = tbody.lastElementChild;
      if (!last) break;
      if (!last.classList.contains('feed-detail')) rowCount -= 1;
      last.remove();
    }
  }

  function render() {
    if (generation !== store.generation) {
      // Replaced (filter change, reset, first mount): rebuild from the store.
      generation = store.generation;
      clear(tbody);
      rowCount = 0;
      store.takeFresh();
      const frag = document.createDocumentFragment();
      for (let i = store.events.length - 1; i >= 0; i--) frag.append(row(store.events[i]));
      rowCount = store.events.length;
      tbody.append(frag);
    } else {
      const fresh = store.takeFresh();
      if (fresh.length) {
        const frag = document.createDocumentFragment();
        for (let i = fresh.length - 1; i >= 0; i--) frag.append(row(fresh[i]));
        tbody.prepend(frag);
        rowCount += fresh.length;
        trimRows();
      }
    }
    empty.hidden = rowCount > 0;
    wrap.hidden = rowCount === 0;
    pauseBtn.textContent = store.paused ? `Resume${store.pending.length ? ` (${formatInt(store.pending.length)} new)` : ''}` : 'Pause';
    pauseBtn.setAttribute('aria-pressed', String(store.paused));
    counts.textContent = `${formatInt(rowCount)} events shown (newest first, at most ${formatInt(store.cap)}) · ${describeControls(store.controls)}`;
    notice.textContent = store.notice;
    notice.hidden = !store.notice;
    container.dataset.rendered = String(rowCount);
  }

  // Generation forces a full render on mount.
  generation = -1;
  const schedule = frameScheduler(render);
  const off = store.onChange(schedule);
  const onVisibility = debounce(schedule, 50);
  document.addEventListener('visibilitychange', onVisibility);
  render();

  return {
    unmount() {
      off();
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
