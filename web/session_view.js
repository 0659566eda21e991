// One session: its timeline (live while the session is active) and a replay.
// Data: a session-bound subscription (/ws/events/{id}, after=0): the whole
// retained history, then live events.
import { ApiError, getSession, reportAuthProblem, token, wsBase } from './api.js';
import { clear, h, uid } from './dom.js';
import { eventTime, formatAgo, formatClock, formatDuration, formatInt } from './format.js';
import { ReplayController, SPEEDS } from './replay.js';
import { connect } from './tailbus.js';
import { Timeline } from './timeline.js';
import { TimelineView } from './timeline_view.js';

/** Mounts the session view; returns {unmount}. */
export function mountSession(container, { sessionId, route }) {
  const targetOffset = Number(route.params.get('offset')) || null;
  let tab = route.params.get('tab') === 'replay' ? 'replay' : 'timeline';

  const events = [];
  let timeline = new Timeline();
  let caughtUp = false;
  let connState = 'connecting';
  let summaryFromServer = null;
  let missing = false;

  // ---- header ----
  const liveBadge = h('span', { class: 'badge', id: uid('live') });
  const summary = h('dl', { class: 'summary' });
  const notice = h('p', { class: 'hint', role: 'status' });

  // ---- tabs ----
  const tabIds = { timeline: uid('tab'), replay: uid('tab') };
  const panelIds = { timeline: uid('panel'), replay: uid('panel') };
  const tabButton = (id, label) =>
    h('button', { type: 'button', role: 'tab', id: tabIds[id], 'aria-controls': panelIds[id], dataset: { tab: id } }, label);
  const tabTimeline = tabButton('timeline', 'Timeline');
  const tabReplay = tabButton('replay', 'Replay');
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Session views' }, tabTimeline, tabReplay);

  const liveList = h('ol', { class: 'timeline', 'aria-label': 'Timeline' });
  const liveEmpty = h('p', { class: 'empty' }, 'Loading the session…');
  const panelTimeline = h('section', { role: 'tabpanel', id: panelIds.timeline, 'aria-labelledby': tabIds.timeline }, liveEmpty, liveList);

  // ---- replay panel ----
  const replayList = h('ol', { class: 'timeline replay-list', 'aria-label': 'Replayed timeline' });
  const playBtn = h('button', { type: 'button', class: 'primary', dataset: { action: 'play' } }, 'Play');
  const stepBackBtn = h('button', { type: 'button', dataset: { action: 'step-back' } }, '◀ Step back');
  const stepBtn = h('button', { type: 'button', dataset: { action: 'step' } }, 'Step ▶');
  const restartBtn = h('button', { type: 'button', dataset: { action: 'restart' } }, '⟲ Restart');
  const speedName = uid('speed');
  const speedSet = h('fieldset', null, h('legend', null, 'Speed'),
    SPEEDS.map((s) => {
      const id = uid('speed');
      return h('label', { class: 'check', for: id },
        h('input', { type: 'radio', name: speedName, id, value: s.id, checked: s.id === '1' }), s.label);
    }));
  const skipId = uid('skip');
  const skipBox = h('input', { type: 'checkbox', id: skipId, checked: true });
  const posId = uid('pos');
  const slider = h('input', { type: 'range', id: posId, min: '0', max: '0', step: '1', value: '0' });
  const posText = h('span', { class: 'muted', 'aria-live': 'off' });
  const replayStatus = h('p', { class: 'muted' });
  const replayControls = h('div', { class: 'replay-controls', role: 'group', 'aria-label': 'Replay controls' },
    playBtn, stepBackBtn, stepBtn, restartBtn, speedSet,
    h('label', { class: 'check', for: skipId }, skipBox, 'Skip idle gaps over 2 s'),
    h('div', { class: 'replay-position' }, h('label', { for: posId }, 'Position'), slider, posText));
  const panelReplay = h('section', { role: 'tabpanel', id: panelIds.replay, 'aria-labelledby': tabIds.replay },
    h('p', { class: 'hint' }, 'Plays the session from its start using the events’ own timestamps. Drag the position (or use the arrow keys on it) to jump to any event.'),
    replayControls, replayStatus, replayList);

  clear(container);
  container.append(
    h('p', null, h('a', { href: '#/sessions' }, '← All sessions')),
    h('div', { class: 'view-head' }, h('h1', null, 'Session ', h('span', { class: 'mono' }, sessionId)), liveBadge),
    summary, notice, tablist, panelTimeline, panelReplay);
  container.dataset.session = sessionId;

  const liveView = new TimelineView(liveList, timeline);

  // ---- replay state ----
  let replayTimeline = new Timeline();
  const replayView = new TimelineView(replayList, replayTimeline);
  let rendered = 0; // events applied to replayTimeline
  const replay = new ReplayController({
    events,
    onChange: (s) => renderReplay(s),
  });

  function renderReplay({ position, playing }) {
    if (position < rendered) {
      replayTimeline = new Timeline();
      replayTimeline.addAll(events.slice(0, position));
      replayView.reset(replayTimeline);
    } else if (position > rendered) {
      for (let i = rendered; i < position; i++) replayView.apply(replayTimeline.add(events[i]));
      replayView.flush();
    }
    rendered = position;
    playBtn.textContent = playing ? 'Pause' : position >= events.length && events.length > 0 ? 'Play again' : 'Play';
    playBtn.setAttribute('aria-pressed', String(playing));
    slider.max = String(events.length);
    slider.value = String(position);
    const cur = position > 0 ? events[position - 1] : null;
    const text = cur
      ? `event ${position} of ${events.length} · offset ${cur.offset} · ${cur.event_type} · ${formatClock(eventTime(cur))}`
      : `start · ${events.length} events`;
    posText.textContent = text;
    slider.setAttribute('aria-valuetext', text);
    replayStatus.textContent = `Cost so far: ${formatInt(replayTimeline.costTotal)} tokens · errors: ${replayTimeline.errorCount}${playing ? ' · playing' : ''}`;
    panelReplay.dataset.position = String(position);
    panelReplay.dataset.playing = String(playing);
    stepBackBtn.disabled = position === 0;
    stepBtn.disabled = position >= events.length;
    if (playing && cur) {
      const li = replayView.elementForOffset(cur.offset);
      li?.scrollIntoView({ block: 'nearest' });
    }
  }

  playBtn.addEventListener('click', () => replay.toggle());
  stepBtn.addEventListener('click', () => replay.step());
  stepBackBtn.addEventListener('click', () => replay.stepBack());
  restartBtn.addEventListener('click', () => replay.restart());
  speedSet.addEventListener('change', (ev) => replay.setSpeed(ev.target.value));
  skipBox.addEventListener('change', () => replay.setSkipIdle(skipBox.checked));
  slider.addEventListener('input', () => {
    const target = Number(slider.value); // read first: pausing re-renders the slider
    replay.pause();
    replay.seek(target);
  });

  // ---- tabs ----
  function selectTab(id, { focus = false } = {}) {
    tab = id;
    for (const [name, btn] of [['timeline', tabTimeline], ['replay', tabReplay]]) {
      const on = name === id;
      btn.setAttribute('aria-selected', String(on));
      btn.tabIndex = on ? 0 : -1;
      if (on && focus) btn.focus();
    }
    panelTimeline.hidden = id !== 'timeline';
    panelReplay.hidden = id !== 'replay';
    if (id !== 'replay') replay.pause();
    else renderReplay(replay);
    const q = new URLSearchParams(route.params);
    if (id === 'replay') q.set('tab', 'replay');
    else q.delete('tab');
    q.delete('offset');
    const qs = q.toString();
    history.replaceState(null, '', `#/sessions/${encodeURIComponent(sessionId)}${qs ? `?${qs}` : ''}`);
  }
  tablist.addEventListener('click', (ev) => {
    const b = ev.target.closest('[role=tab]');
    if (b) selectTab(b.dataset.tab);
  });
  tablist.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft' || ev.key === 'Home' || ev.key === 'End') {
      ev.preventDefault();
      const next = ev.key === 'Home' ? 'timeline' : ev.key === 'End' ? 'replay' : tab === 'timeline' ? 'replay' : 'timeline';
      selectTab(next, { focus: true });
    }
  });

  // ---- summary ----
  function renderSummary() {
    const first = timeline.firstTime;
    const last = timeline.lastTime;
    const row = (label, value) => h('div', null, h('dt', null, label), h('dd', null, value));
    clear(summary);
    summary.append(
      row('Events', formatInt(Math.max(timeline.eventCount, summaryFromServer?.events ?? 0))),
      row('Cost tokens', formatInt(timeline.costTotal)),
      row('Errors', formatInt(timeline.errorCount)),
      row('Duration', Number.isFinite(first) ? formatDuration(last - first) : '—'),
      row('First event', Number.isFinite(first) ? formatClock(first) : '—'),
      row('Last event', Number.isFinite(last) ? `${formatClock(last)} (${formatAgo(last)})` : '—'));
    const live = connState === 'connected' && caughtUp;
    liveBadge.textContent = live ? 'Live' : connState === 'reconnecting' ? 'Reconnecting…' : connState === 'closed' ? 'Disconnected' : 'Loading…';
    liveBadge.className = live ? 'badge live' : 'badge';
    liveBadge.title = live ? 'New events of this session appear as they are committed' : '';
    liveEmpty.hidden = timeline.items.length > 0;
    if (timeline.items.length === 0) {
      liveEmpty.textContent = missing ? 'This session has no events (yet). New ones will appear here.' : caughtUp ? 'No events yet.' : 'Loading the session…';
    }
    container.dataset.events = String(events.length);
    container.dataset.caughtUp = String(caughtUp);
  }

  // ---- data ----
  const conn = connect({ url: wsBase, sessionId, after: 0, token });
  let lastServerError = '';
  conn.on('error', (err) => {
    // A refused token closes the stream for good (4401/4403): say so in the banner.
    if (err.closeCode === 4401 || err.closeCode === 4403) {
      reportAuthProblem({ status: err.closeCode - 4000, message: lastServerError || err.message });
    } else if (err.code && !err.closeCode) {
      lastServerError = err.message;
    }
  });
  conn.on('status', (s) => {
    connState = s.state;
    renderSummary();
  });
  conn.on('batch', (batch) => {
    for (const e of batch) {
      events.push(e);
      liveView.apply(timeline.add(e));
    }
    replay.extend(events);
    if (caughtUp) renderSummary();
    else scheduleSummary();
  });
  let summaryTimer = null;
  const scheduleSummary = () => {
    if (summaryTimer) return;
    summaryTimer = setTimeout(() => {
      summaryTimer = null;
      renderSummary();
    }, 100);
  };
  conn.on('caught_up', () => {
    caughtUp = true;
    liveView.flush();
    renderSummary();
    if (targetOffset) {
      const li = liveView.elementForOffset(targetOffset);
      if (li) {
        li.classList.add('is-target');
        li.tabIndex = -1;
        li.scrollIntoView({ block: 'center' });
        li.focus({ preventScroll: true });
      }
    }
  });
  conn.on('reset', (r) => {
    events.length = 0;
    timeline = new Timeline();
    liveView.reset(timeline);
    replay.pause();
    replay.extend(events);
    rendered = Infinity; // forces a rebuild
    renderReplay(replay);
    notice.textContent = r.reason === 'epoch_mismatch'
      ? 'The server now has a different database: this session was reloaded from it.'
      : `Events before offset ${r.earliest} are no longer retained.`;
    renderSummary();
  });
  conn.on('error', (err) => {
    notice.textContent = `Server: ${err.message}`;
  });

  getSession(sessionId).then((s) => {
    summaryFromServer = s;
    renderSummary();
  }, (err) => {
    if (err instanceof ApiError && err.status === 404) missing = true;
    renderSummary();
  });

  selectTab(tab);
  renderSummary();
  const tick = setInterval(renderSummary, 5000);

  return {
    unmount() {
      clearInterval(tick);
      clearTimeout(summaryTimer);
      replay.dispose();
      conn.close();
    },
  };
}
