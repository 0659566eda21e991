// The alerts view: define cost and error alerts, see them fire, follow a fired
// alert to its session, opt in to browser notifications.
import { alertFilter, describeAlert, makeDefinition } from './alerts.js';
import { clear, h, uid } from './dom.js';
import { eventTime, formatClock, formatInt, splitList } from './format.js';

function notificationState() {
  if (typeof Notification === 'undefined') return 'unsupported';
  return Notification.permission; // 'default' | 'granted' | 'denied'
}

/** Mounts the alerts view; returns {unmount}. */
export function mountAlerts(container, { alerts }) {
  const ids = { name: uid('a'), threshold: uid('a'), models: uid('a'), tools: uid('a'), notify: uid('a'), kindCost: uid('a'), kindError: uid('a') };
  const formError = h('p', { class: 'error-text', role: 'alert' });
  const preview = h('p', { class: 'filter-json mono span-all' });
  const thresholdField = h('div', { class: 'field' },
    h('label', { for: ids.threshold }, 'Cost above (tokens per event)'),
    h('input', { id: ids.threshold, name: 'threshold', type: 'number', min: '0', step: '1', inputmode: 'numeric', value: '1000' }));
  const form = h('form', { class: 'alert-form', 'aria-labelledby': 'new-alert-title' },
    h('fieldset', { class: 'span-all bare' },
      h('legend', { class: 'visually-hidden' }, 'Kind of alert'),
      h('label', { class: 'check', for: ids.kindCost }, h('input', { type: 'radio', name: 'kind', id: ids.kindCost, value: 'cost', checked: true }), 'Cost alert'),
      h('label', { class: 'check', for: ids.kindError }, h('input', { type: 'radio', name: 'kind', id: ids.kindError, value: 'error' }), 'Error alert')),
    h('div', { class: 'field' }, h('label', { for: ids.name }, 'Name'),
      h('input', { id: ids.name, name: 'name', type: 'text', placeholder: 'optional', autocomplete: 'off' })),
    thresholdField,
    h('div', { class: 'field' }, h('label', { for: ids.models }, 'Only models'),
      h('input', { id: ids.models, name: 'models', type: 'text', placeholder: 'any (comma separated)', autocomplete: 'off' })),
    h('div', { class: 'field' }, h('label', { for: ids.tools }, 'Only tools'),
      h('input', { id: ids.tools, name: 'tools', type: 'text', placeholder: 'any (comma separated)', autocomplete: 'off' })),
    h('div', { class: 'span-all' },
      h('label', { class: 'check', for: ids.notify }, h('input', { id: ids.notify, name: 'notify', type: 'checkbox' }), 'Browser notification'),
      h('button', { type: 'submit', class: 'primary' }, 'Create alert')),
    preview);

  const readForm = () => ({
    kind: form.elements.kind.value,
    name: form.elements.name.value,
    threshold: form.elements.threshold.value.trim(),
    models: splitList(form.elements.models.value),
    tools: splitList(form.elements.tools.value),
    notify: form.elements.notify.checked,
  });
  const updatePreview = () => {
    const v = readForm();
    thresholdField.hidden = v.kind !== 'cost';
    try {
      preview.textContent = `filter: ${JSON.stringify(alertFilter(makeDefinition(v)))}`;
    } catch {
      preview.textContent = '';
    }
  };
  form.addEventListener('input', updatePreview);
  form.addEventListener('change', updatePreview);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formError.textContent = '';
    let def;
    try {
      def = makeDefinition(readForm());
    } catch (err) {
      formError.textContent = err.message;
      return;
    }
    if (def.notify) await requestPermission();
    alerts.add(def);
    form.elements.name.value = '';
    updatePreview();
    status.textContent = `Alert “${def.name}” created; it watches for new matching events.`;
  });

  const status = h('p', { class: 'muted', role: 'status' });
  const permText = h('span', { class: 'muted' });
  const permBtn = h('button', { type: 'button', onclick: () => requestPermission() }, 'Allow browser notifications');
  async function requestPermission() {
    if (notificationState() !== 'default') return renderPermission();
    try {
      await Notification.requestPermission();
    } catch {
      /* ignored */
    }
    renderPermission();
  }
  function renderPermission() {
    const s = notificationState();
    permBtn.hidden = s !== 'default';
    permText.textContent = {
      unsupported: 'This browser has no notifications; fired alerts are listed below.',
      default: 'Notifications are not allowed yet.',
      granted: 'Browser notifications are allowed.',
      denied: 'Notifications are blocked for this site (change it in the browser’s site settings).',
    }[s];
  }

  const defsBox = h('div', { class: 'cards', role: 'list', 'aria-label': 'Alert definitions' });
  const firedBody = h('tbody');
  const firedTable = h('table', null,
    h('caption', { class: 'visually-hidden' }, 'Fired alerts, newest first'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Time'),
      h('th', { scope: 'col' }, 'Alert'),
      h('th', { scope: 'col' }, 'Event'),
      h('th', { scope: 'col' }, 'Session'),
      h('th', { scope: 'col', class: 'num' }, 'Cost tokens'),
      h('th', { scope: 'col' }, 'Details'))),
    firedBody);
  const firedEmpty = h('p', { class: 'empty' }, 'No alert has fired yet.');
  const firedWrap = h('div', { class: 'table-wrap' }, firedTable);
  const clearBtn = h('button', { type: 'button', onclick: () => alerts.clearFired() }, 'Clear list');

  function stateText(s) {
    switch (s.state) {
      case 'connected': return 'watching';
      case 'reconnecting': return 'reconnecting…';
      case 'closed': return `stopped${s.reason ? ` (${s.reason})` : ''}`;
      case 'off': return 'disabled';
      default: return 'connecting…';
    }
  }

  function renderDefinitions() {
    clear(defsBox);
    if (alerts.definitions.length === 0) {
      defsBox.append(h('p', { class: 'muted', role: 'listitem' }, 'No alerts defined. Create one above.'));
      return;
    }
    for (const def of alerts.definitions) {
      const s = alerts.status(def.id);
      const count = alerts.fired.filter((f) => f.alertId === def.id).length;
      const notifyId = uid('n');
      const notify = h('input', { type: 'checkbox', id: notifyId, checked: def.notify, dataset: { key: `${def.id}:notify` } });
      notify.addEventListener('change', async () => {
        if (notify.checked) await requestPermission();
        alerts.setNotify(def.id, notify.checked);
      });
      defsBox.append(h('article', { class: 'card', role: 'listitem', dataset: { alert: def.id, kind: def.kind } },
        h('h3', null, def.name),
        h('p', { class: 'tight' }, describeAlert(def)),
        h('p', { class: 'muted tight' }, `${stateText(s)} · fired ${formatInt(count)} time${count === 1 ? '' : 's'} (in the list)`),
        h('p', { class: 'filter-json mono' }, JSON.stringify(alertFilter(def))),
        h('div', { class: 'actions' },
          h('label', { class: 'check', for: notifyId }, notify, 'Notify'),
          h('button', { type: 'button', 'aria-pressed': String(def.enabled), dataset: { key: `${def.id}:enable` }, onclick: () => alerts.setEnabled(def.id, !def.enabled) }, def.enabled ? 'Enabled' : 'Disabled'),
          h('button', {
            type: 'button', class: 'danger', 'aria-label': `Delete alert ${def.name}`, dataset: { key: `${def.id}:delete` },
            onclick: () => {
              if (confirm(`Delete the alert “${def.name}”?`)) alerts.remove(def.id);
            },
          }, 'Delete'))));
    }
  }

  function renderFired() {
    clear(firedBody);
    for (const f of alerts.fired) {
      const when = eventTime(f);
      firedBody.append(h('tr', { class: f.kind === 'error' ? 'is-error' : null, dataset: { offset: f.offset, alert: f.alertId } },
        h('td', { class: 'mono', title: f.timestamp ?? '' }, formatClock(when)),
        h('td', null, f.alertName),
        h('td', null, h('span', { class: 'type' }, f.event_type), f.tool_name ? ` · ${f.tool_name}` : '', f.model ? ` · ${f.model}` : ''),
        h('td', null, h('a', { href: `#/sessions/${encodeURIComponent(f.session_id)}?offset=${f.offset}` }, f.session_id)),
        h('td', { class: 'num' }, formatInt(f.cost_tokens)),
        h('td', { class: 'wrap' }, [f.status, f.message].filter(Boolean).join(' · '))));
    }
    firedWrap.hidden = alerts.fired.length === 0;
    firedEmpty.hidden = alerts.fired.length > 0;
    clearBtn.hidden = alerts.fired.length === 0;
    container.dataset.fired = String(alerts.fired.length);
  }

  function render() {
    // Re-rendering replaces the cards: keep keyboard focus on the same control.
    const key = container.contains(document.activeElement) ? document.activeElement.dataset?.key : null;
    renderDefinitions();
    renderFired();
    if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
    alerts.markSeen();
  }

  clear(container);
  container.append(
    h('div', { class: 'view-head' }, h('h1', null, 'Alerts')),
    h('p', { class: 'hint' }, 'Each alert is a server-side filter subscription: the server sends only matching events. Alerts run while this page is open in any view, resume where they left off after a reload, and are stored in this browser.'),
    h('div', { class: 'toolbar' }, permText, permBtn),
    h('h2', { id: 'new-alert-title' }, 'New alert'),
    form, formError, status,
    h('h2', null, 'Alerts'),
    defsBox,
    h('div', { class: 'view-head' }, h('h2', null, 'Fired'), clearBtn),
    firedEmpty,
    firedWrap);
  updatePreview();
  renderPermission();
  render();
  let scheduled = false;
  const off = alerts.onChange(() => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      render();
    });
  });
  return { unmount: off };
}
