// The tailbus UI: bootstraps the main connection (the live feed, which the
// header's status reflects), the alerts, and a hash router over the views:
//   #/feed[?filter params]   #/sessions[?search=]   #/sessions/<id>[?tab=replay&offset=N]   #/alerts
import { AlertsRuntime } from './alerts.js';
import { mountAlerts } from './alerts_view.js';
import { getStatus, onAuthProblem, reportAuthProblem, token, wsBase } from './api.js';
import { clear, h } from './dom.js';
import { BACKLOG_OFFSETS, FeedStore, mountFeed } from './feed.js';
import { buildFilter, paramsToControls } from './filters.js';
import { mountSession } from './session_view.js';
import { mountSessions } from './sessions.js';
import { startStatusBar } from './status_bar.js';
import { connect } from './tailbus.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');

// The skip link moves focus without touching the hash (the router owns it).
document.querySelector('.skip-link')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});

/** Parses location.hash into {view, id, params}. */
export function parseRoute(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (parts[0] === 'sessions' && parts.length > 1) return { view: 'session', id: parts.slice(1).join('/'), params };
  if (parts[0] === 'sessions') return { view: 'sessions', params };
  if (parts[0] === 'alerts') return { view: 'alerts', params };
  return { view: 'feed', params };
}

function showBanner(message) {
  clear(banner);
  banner.append(message);
  banner.hidden = false;
}

function authMessage(status, message) {
  let hint;
  if (status === 403) {
    hint = 'The token in this page’s address does not allow this view (it needs the "subscribe" scope and sessions ["*"] for the live feed, or the session for a session page).';
  } else {
    hint = token
      ? 'The token in this page’s address (?token=…) was not accepted (expired or not signed with this server’s secret).'
      : 'This server requires an access token: open this page as …/?token=YOUR_TOKEN (mint one with `tailbus token`).';
  }
  const why = message ? ` Server: ${message}.` : '';
  return h('span', null, h('strong', null, status === 403 ? 'Access denied (403 Forbidden). ' : 'Not authorised (401 Unauthorized). '), hint, why);
}

async function start() {
  let head;
  try {
    head = (await getStatus())?.head;
  } catch {
    head = undefined; // server down or refusing: live only; the client reconnects by itself
  }

  const initial = parseRoute();
  const initialControls = initial.view === 'feed' ? paramsToControls(initial.params) : paramsToControls(new URLSearchParams());
  const connection = connect({
    url: wsBase,
    token,
    filter: buildFilter(initialControls),
    after: typeof head === 'number' ? Math.max(0, head - BACKLOG_OFFSETS) : undefined,
  });
  const store = new FeedStore(connection);
  store.controls = initialControls;
  const statusBar = startStatusBar({ connection });

  onAuthProblem(({ status, message }) => showBanner(authMessage(status, message)));
  let lastServerError = '';
  connection.on('error', (err) => {
    // The error frame before the close says why (e.g. "token: expired").
    if (err.closeCode === 4401) reportAuthProblem({ status: 401, message: lastServerError || err.message });
    else if (err.closeCode === 4403) reportAuthProblem({ status: 403, message: lastServerError || err.message });
    else if (err.code && !err.closeCode) lastServerError = err.message; // e.g. a refused filter, before a 4400 close
  });
  connection.on('status', (s) => {
    if (s.state === 'closed' && s.code && s.code !== 4401 && s.code !== 4403 && !banner.textContent) {
      const why = s.code === 4003
        ? 'this page’s origin is not allowed (--allowed-origins)'
        : lastServerError || s.reason || 'no reason given';
      showBanner(h('span', null, h('strong', null, `Disconnected (close code ${s.code}). `), `The server refused the connection: ${why}. Reload the page to try again.`));
    }
    if (s.state === 'reconnecting' && s.attempt >= 3) {
      // Repeated failures: find out whether it is an authorisation problem.
      getStatus().catch(() => {});
    }
  });

  const alerts = new AlertsRuntime({
    connect,
    url: wsBase,
    token,
    notify: (fired, def) => {
      if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
      const n = new Notification(`tailbus alert: ${def.name}`, {
        body: `${fired.event_type} in session ${fired.session_id}${fired.cost_tokens != null ? ` · ${fired.cost_tokens} tokens` : ''}${fired.message ? ` · ${fired.message}` : ''}`,
        tag: `tailbus-${def.id}`,
      });
      n.onclick = () => {
        window.focus();
        location.hash = `#/sessions/${encodeURIComponent(fired.session_id)}?offset=${fired.offset}`;
        n.close();
      };
    },
  });
  alerts.start();
  const badge = document.getElementById('alerts-badge');
  const renderBadge = () => {
    const n = alerts.unseen;
    badge.hidden = n === 0;
    badge.textContent = n > 99 ? '99+' : String(n);
    badge.setAttribute('aria-label', `${n} new`);
  };
  alerts.onChange(renderBadge);
  renderBadge();

  let current = null;
  let currentKey = '';
  const getHead = () => statusBar.head ?? connection.head ?? head;

  function route() {
    const r = parseRoute();
    const key = r.view === 'session' ? `session:${r.id}` : r.view;
    for (const a of document.querySelectorAll('[data-nav]')) {
      const on = a.dataset.nav === (r.view === 'session' ? 'sessions' : r.view);
      if (on) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (key === currentKey && r.view !== 'feed') return; // same view; its own state handles params
    current?.unmount();
    current = null;
    currentKey = key;
    clear(main);
    const view = h('div', { class: `view view-${r.view}`, dataset: { view: r.view } });
    main.append(view);
    switch (r.view) {
      case 'session':
        document.title = `${r.id} · tailbus`;
        current = mountSession(view, { sessionId: r.id, route: r });
        break;
      case 'sessions':
        document.title = 'Sessions · tailbus';
        current = mountSessions(view, { feedConnection: connection, route: r });
        break;
      case 'alerts':
        document.title = 'Alerts · tailbus';
        current = mountAlerts(view, { alerts });
        break;
      default:
        document.title = 'Live feed · tailbus';
        current = mountFeed(view, { store, getHead, route: r });
    }
    // Move focus to the new view's heading, so keyboard and screen reader users start there.
    const h1 = view.querySelector('h1');
    if (h1 && navigated) {
      h1.tabIndex = -1;
      h1.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
    navigated = true;
  }
  let navigated = false;
  window.addEventListener('hashchange', route);
  route();

  // For tests and debugging from the console.
  window.tailbus = { connection, store, alerts };
}

start().catch((err) => {
  showBanner(h('span', null, h('strong', null, 'The UI failed to start: '), String(err?.message ?? err)));
  throw err;
});
