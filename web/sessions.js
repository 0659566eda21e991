// Sessions: newest activity first, with event count, cost tokens, errors and
// duration; search by id; delete with a confirmation dialog.
import { ApiError, deleteSession, listSessions } from './api.js';
import { clear, debounce, h, uid } from './dom.js';
import { formatAgo, formatClock, formatDuration, formatInt, plural } from './format.js';

const PAGE = 50;

/** Mounts the sessions view; returns {unmount}. */
export function mountSessions(container, { feedConnection, route }) {
  let search = route.params.get('search') ?? '';
  let sessions = [];
  let more = false;
  let loading = false;
  let error = '';

  const searchId = uid('search');
  const searchInput = h('input', {
    id: searchId, type: 'search', value: search, placeholder: 'part of a session id',
    autocomplete: 'off', spellcheck: 'false',
  });
  const status = h('p', { class: 'muted', role: 'status' });
  const tbody = h('tbody');
  const table = h('table', null,
    h('caption', { class: 'visually-hidden' }, 'Sessions, newest activity first'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Session'),
      h('th', { scope: 'col' }, 'Last activity'),
      h('th', { scope: 'col', class: 'num' }, 'Events'),
      h('th', { scope: 'col', class: 'num' }, 'Cost tokens'),
      h('th', { scope: 'col', class: 'num' }, 'Errors'),
      h('th', { scope: 'col', class: 'num' }, 'Duration'),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    tbody);
  const tableWrap = h('div', { class: 'table-wrap' }, table);
  const moreBtn = h('button', { type: 'button', onclick: () => load({ append: true }) }, 'Load more');

  // Confirmation dialog (native <dialog>: focus is trapped and Escape cancels).
  const hardId = uid('hard');
  const dialogTitle = h('h2', { id: uid('dlg') });
  const dialogText = h('p');
  const hardBox = h('input', { type: 'checkbox', id: hardId });
  const dialogError = h('p', { class: 'error-text', role: 'alert' });
  const confirmBtn = h('button', { type: 'submit', class: 'danger', value: 'delete' }, 'Delete');
  const dialog = h('dialog', { 'aria-labelledby': dialogTitle.id },
    h('form', { method: 'dialog' },
      dialogTitle, dialogText,
      h('label', { class: 'check', for: hardId }, hardBox, 'Also remove its events from the log (cannot be undone)'),
      dialogError,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', value: 'cancel', autofocus: true }, 'Cancel'),
        confirmBtn)));
  let deleting = null;

  dialog.addEventListener('close', async () => {
    const target = deleting;
    deleting = null;
    if (dialog.returnValue !== 'delete' || !target) return;
    try {
      await deleteSession(target.id, { hard: hardBox.checked });
      status.textContent = `Deleted session ${target.id}${hardBox.checked ? ' and its events' : ''}.`;
      sessions = sessions.filter((s) => s.id !== target.id);
      render();
    } catch (err) {
      status.textContent = `Could not delete ${target.id}: ${err.message}`;
    }
  });

  function askDelete(s, button) {
    deleting = s;
    dialogTitle.textContent = `Delete session ${s.id}?`;
    dialogText.textContent = `${plural(s.events, 'event')}. A deleted session is hidden from listings and reads; its offsets are never reused.`;
    hardBox.checked = false;
    dialogError.textContent = '';
    dialog.returnValue = '';
    dialog.showModal();
    dialog.addEventListener('close', () => button.isConnected && button.focus(), { once: true });
  }

  function render() {
    clear(tbody);
    const now = Date.now();
    for (const s of sessions) {
      const duration = Number.isFinite(s.firstTime) && Number.isFinite(s.lastTime) ? s.lastTime - s.firstTime : NaN;
      const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete session ${s.id}` }, 'Delete');
      del.addEventListener('click', () => askDelete(s, del));
      tbody.append(h('tr', { class: s.errors > 0 ? 'is-error' : null, dataset: { session: s.id } },
        h('td', null, h('a', { href: `#/sessions/${encodeURIComponent(s.id)}` }, s.id)),
        h('td', { title: Number.isFinite(s.lastTime) ? new Date(s.lastTime).toISOString() : '' },
          `${formatAgo(s.lastTime, now)}`, h('span', { class: 'muted' }, Number.isFinite(s.lastTime) ? ` · ${formatClock(s.lastTime, now)}` : '')),
        h('td', { class: 'num' }, formatInt(s.events)),
        h('td', { class: 'num' }, formatInt(s.cost)),
        h('td', { class: 'num' }, s.errors > 0 ? h('span', { class: 'badge err' }, formatInt(s.errors)) : '0'),
        h('td', { class: 'num' }, formatDuration(duration)),
        h('td', null, del)));
    }
    tableWrap.hidden = sessions.length === 0;
    moreBtn.hidden = !more;
    if (error) status.textContent = error;
    else if (loading) status.textContent = 'Loading…';
    else if (sessions.length === 0) status.textContent = search ? `No session id contains “${search}”.` : 'No sessions yet.';
    else status.textContent = `${plural(sessions.length, 'session')}${more ? ' (more available)' : ''}.`;
    container.dataset.count = String(sessions.length);
  }

  let requestSeq = 0;
  async function load({ append = false } = {}) {
    const seq = ++requestSeq;
    loading = true;
    error = '';
    render();
    try {
      const res = await listSessions({ limit: PAGE, offset: append ? sessions.length : 0, search });
      if (seq !== requestSeq) return;
      sessions = append ? [...sessions, ...res.sessions] : res.sessions;
      more = res.more;
    } catch (err) {
      if (seq !== requestSeq) return;
      error = err instanceof ApiError ? err.message : String(err);
    } finally {
      if (seq === requestSeq) {
        loading = false;
        render();
      }
    }
  }

  const onSearch = debounce(() => {
    search = searchInput.value.trim();
    history.replaceState(null, '', `#/sessions${search ? `?search=${encodeURIComponent(search)}` : ''}`);
    load();
  }, 250);
  searchInput.addEventListener('input', onSearch);

  // New events: refresh the list (at most every 3 s), unless paging further.
  const refresh = debounce(() => {
    if (!dialog.open && sessions.length <= PAGE) load();
  }, 3000);
  const off = feedConnection.on('batch', refresh);

  clear(container);
  container.append(
    h('div', { class: 'view-head' }, h('h1', null, 'Sessions'), h('span', { class: 'muted' }, 'newest activity first')),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field' }, h('label', { for: searchId }, 'Search by id'), searchInput),
      h('button', { type: 'button', onclick: () => load() }, 'Refresh')),
    status,
    tableWrap,
    h('p', null, moreBtn),
    dialog);
  load();

  return {
    unmount() {
      off();
      refresh.cancel();
      onSearch.cancel();
      if (dialog.open) dialog.close();
    },
  };
}
