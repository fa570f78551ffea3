// The chat and challenge pages: what only a browser can do. The server renders every run,
// check, estimate and grade as HTML fragments; this script keeps the configuration in
// localStorage, reads and writes files, sends the participant's own key with runs, and swaps
// fragments in (an element with the id of the one it updates; data-swap: append, prepend,
// inner, or replace when absent). No build step.
'use strict';
(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const SWAPS = { append: 'append', prepend: 'prepend', inner: 'replaceChildren' };
  /** Applies server-rendered fragments; returns the elements they touched. */
  function swap(html) {
    const template = Object.assign(document.createElement('template'), { innerHTML: html });
    return [...template.content.children].map((el) => {
      const target = document.getElementById(el.id);
      const how = SWAPS[el.dataset.swap];
      if (target && how) target[how](...el.childNodes);
      else target?.replaceWith(el);
      return target && (how ? target : el);
    }).filter(Boolean);
  }
  // Times come as UTC; the reader's own zone is friendlier.
  const localTimes = () => $$('time[datetime]:not([data-local])').forEach((t) => {
    t.dataset.local = '';
    t.textContent = new Date(t.dateTime).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    t.title = new Date(t.dateTime).toLocaleString();
  });
  localTimes();
  document.addEventListener('click', (event) => {
    const copy = event.target.closest('[data-copy]');
    const say = (text) => { copy.textContent = text; };
    if (copy) navigator.clipboard.writeText(document.getElementById(copy.dataset.copy).textContent)
      .then(() => { say('Copied'); setTimeout(() => say('Copy'), 1500); }, () => say('Select the code to copy it'));
  });
  // Grading takes a few seconds: say so while the page waits for it.
  document.addEventListener('submit', (event) => $$('[data-working]', event.target).forEach((s) => { s.textContent = s.dataset.working; }));
  const form = $('#config');
  const askForm = $('#ask');
  if (!form || !askForm) return;
  const STORE = form.dataset.store;
  const MAX_AGENTS = Number(form.dataset.maxAgents);
  const DEFAULTS = JSON.parse(form.dataset.defaults);
  const [agentsList, question, askButton, stopButton, runError] = ['#agents', '#question', '#ask-button', '#stop', '#run-error'].map((s) => $(s));
  const store = (key, value) => { try { if (value) localStorage.setItem(key, value); else localStorage.removeItem(key); } catch (_) { /* private mode */ } };
  const stored = (key) => { try { return localStorage.getItem(key); } catch (_) { return null; } };

  // ---- The configuration form ----
  // A model select's options are [provider, model] as JSON, grouped by provider.
  function setModel(select, provider, model) {
    const value = JSON.stringify([provider || JSON.parse(select.options[0].value)[0], model]);
    // A model this server does not offer stays visible, so the check can name it.
    if (![...select.options].some((o) => o.value === value)) select.add(new Option(`${model} (not offered here)`, value));
    select.value = value;
  }
  function agentElement(agent) {
    const li = $('#agent-template').content.firstElementChild.cloneNode(true);
    for (const field of ['name', 'temperature', 'max_tokens', 'prompt']) $(`[name=${field}]`, li).value = agent[field] ?? '';
    setModel($('[name=model]', li), agent.provider, agent.model ?? '');
    return li;
  }
  const number = (value) => (String(value).trim() === '' ? null : Number(value));
  function readConfig() {
    // Each agent's fields come in the form's order, so the nth of each name is agent n's.
    const data = new FormData(form);
    const [main_provider, main_model] = JSON.parse(data.get('main_model'));
    const field = (name, i) => data.getAll(name)[i];
    return {
      main_provider, main_model, system_prompt: data.get('system_prompt'),
      main_temperature: number(data.get('main_temperature')), cycles: number(data.get('cycles')),
      layer_agents: data.getAll('name').map((name, i) => {
        const [provider, model] = JSON.parse(field('model', i));
        return { name: name.trim(), provider, model, temperature: number(field('temperature', i)), prompt: field('prompt', i), max_tokens: number(field('max_tokens', i)) };
      }),
    };
  }
  function writeConfig(config) {
    const f = form.elements;
    setModel(f.main_model, config.main_provider, config.main_model);
    f.main_temperature.value = config.main_temperature;
    f.cycles.value = config.cycles;
    f.system_prompt.value = config.system_prompt;
    agentsList.replaceChildren(...config.layer_agents.map(agentElement));
    changed();
  }
  function changed() {
    const count = agentsList.children.length;
    $('#agent-count').textContent = `(${count} of at most ${MAX_AGENTS})`;
    $('#add-agent').disabled = count >= MAX_AGENTS;
    $$('[data-action=duplicate]', agentsList).forEach((b) => { b.disabled = count >= MAX_AGENTS; });
    $$('[data-action=remove]', agentsList).forEach((b) => { b.disabled = count <= 1; });
    store(STORE, JSON.stringify(readConfig()));
    scheduleCheck();
  }
  form.addEventListener('input', changed);
  form.addEventListener('change', changed); // not every way of picking an option fires `input`
  form.addEventListener('submit', (event) => event.preventDefault());
  const uniqueName = (base) => {
    const taken = new Set(readConfig().layer_agents.map((a) => a.name));
    for (let i = 2; ; i++) if (!taken.has(`${base}_${i}`)) return `${base}_${i}`;
  };
  agentsList.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button || button.disabled) return;
    const li = button.closest('li');
    if (button.dataset.action === 'remove') li.remove();
    else li.after(agentElement({ ...readConfig().layer_agents[[...agentsList.children].indexOf(li)], name: uniqueName(($('[name=name]', li).value.replace(/_\d+$/, '')) || 'agent') }));
    changed();
  });
  $('#add-agent').addEventListener('click', () => { agentsList.append(agentElement({ ...DEFAULTS.layer_agents[0], name: uniqueName('agent') })); changed(); });
  $('#reset').addEventListener('click', () => writeConfig(DEFAULTS));
  $('#export').addEventListener('click', () => { $('#export-config').value = JSON.stringify(readConfig()); $('#export-form').submit(); });
  $('#import').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    event.target.value = '';
    if (!file) return;
    const response = await fetch('/config/import', { method: 'POST', body: await file.text() });
    const body = await response.json();
    Object.assign($('#config-error'), { hidden: response.ok, textContent: response.ok ? '' : `${file.name}: ${body.error}` });
    if (response.ok) writeConfig(body);
  });
  $$('.preset').forEach((button) => button.addEventListener('click', () => { form.elements.system_prompt.value = button.dataset.preset; changed(); }));
  $('#prompt-choice')?.addEventListener('change', (event) => { question.value = event.target.value; scheduleCheck(); });
  question.addEventListener('input', scheduleCheck);
  question.addEventListener('keydown', (event) => { if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) askForm.requestSubmit(); });

  // ---- The participant's own key: this browser only, sent with runs as a header ----
  const KEY_STORE = 'moa-api-key';
  const keyInput = $('#user-key');
  let ownKey = (stored(KEY_STORE) || '').trim();
  function keyChanged() {
    const status = $('#key-status');
    status.dataset.key = ownKey ? 'yours' : $('#key-box').dataset.eventKey === 'true' ? 'event' : 'none';
    status.textContent = status.dataset[`say${status.dataset.key}`];
    $('#no-key')?.toggleAttribute('hidden', Boolean(ownKey));
    refreshAsk();
  }
  keyInput.value = ownKey;
  keyInput.addEventListener('input', () => { ownKey = keyInput.value.trim(); store(KEY_STORE, ownKey); keyChanged(); });
  $('#forget-key').addEventListener('click', () => { keyInput.value = ''; ownKey = ''; store(KEY_STORE, ''); keyChanged(); });

  // ---- The server's check: problems, the estimate, what each model reads ----
  let [checkTimer, checkSeq] = [null, 0];
  let check = { blocking: false, needsKey: $('#key-box').dataset.eventKey !== 'true' };
  function scheduleCheck() { clearTimeout(checkTimer); checkTimer = setTimeout(runCheck, 300); }
  async function runCheck() {
    const mine = ++checkSeq;
    try {
      const body = JSON.stringify({ config: readConfig(), question: question.value, challenge: askForm.dataset.challengeId });
      const response = await fetch('/config/check', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const html = await response.text();
      if (mine !== checkSeq || !response.ok) return;
      swap(html);
      const result = $('#config-check');
      check = { blocking: result.dataset.blocking === 'true', needsKey: result.dataset.needsKey === 'true' };
      refreshAsk();
    } catch (_) { /* offline: the run itself will say so */ }
  }
  let busy = false;
  function refreshAsk() {
    const keyMissing = check.needsKey && !ownKey;
    askButton.disabled = busy || check.blocking || keyMissing || !('ready' in askForm.dataset);
    askButton.title = keyMissing ? 'Paste your API key first' : '';
  }

  // ---- A run: fragments streamed by the server ----
  // The server says it is alive every 4 s; three silent intervals mean the link is gone.
  const STALL_MS = 12000;
  let [running, ticker] = [null, null];
  /** Shows elapsed time on what is still running, counted from when it appeared. */
  const tick = (turn) => $$('[data-ticking]', turn).forEach((el) => {
    el.dataset.since ||= Date.now();
    el.textContent = `${((Date.now() - el.dataset.since) / 1000).toFixed(1)} s`;
  });
  /** Ends `turn` with what only the browser knows: it stopped it, or lost the server. */
  function say(turn, kind, message, retry) {
    clearInterval(ticker);
    $$('[data-ticking]', turn).forEach((el) => el.removeAttribute('data-ticking'));
    const note = Object.assign(document.createElement('p'), { className: `notice ${kind}`, textContent: `${message} ` });
    if (retry) note.append(Object.assign(document.createElement('button'), { type: 'button', className: 'secondary', textContent: 'Retry', onclick: retry }));
    $('.run-status', turn).replaceChildren(note);
  }
  /** Streams a run (or, from the challenge's Measure buttons, a measurement) into the page. */
  async function start(body, endpoint = askForm.dataset.endpoint) {
    running?.abort('stopped');
    const controller = (running = new AbortController());
    [busy, stopButton.hidden, runError.hidden] = [true, false, true];
    refreshAsk();
    let [turn, ended, reader, lastByte] = [null, false, null, Date.now()];
    const watchdog = setInterval(() => {
      if (Date.now() - lastByte < STALL_MS) return;
      controller.abort('stalled');
      reader?.cancel(); // a body that stopped flowing does not always notice the abort
    }, 1000);
    try {
      const headers = { 'content-type': 'application/json', accept: 'text/event-stream' };
      if (ownKey) headers['x-llm-api-key'] = ownKey;
      const response = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(body), signal: controller.signal });
      if (!response.ok) {
        ended = true;
        runError.textContent = await response.json().then((b) => b.error, () => `The server answered with status ${response.status}.`);
        runError.hidden = false;
        return runError.focus();
      }
      reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        lastByte = Date.now();
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const name = (frame.find((l) => l.startsWith('event:')) || 'event: message').slice(6).trim();
          const html = frame.filter((l) => l.startsWith('data:')).map((l) => l.slice(l[5] === ' ' ? 6 : 5)).join('\n');
          if (!html) continue;
          const touched = swap(html);
          if (!turn) {
            turn = touched[0]?.querySelector('.turn, .lab');
            turn?.focus();
            ticker = setInterval(() => tick(turn), 250);
          }
          if (name !== 'end') continue;
          ended = true;
          clearInterval(ticker);
          localTimes();
        }
      }
    } catch (_) {
      if (controller.signal.reason === 'stopped' && turn) { ended = true; say(turn, '', 'Stopped.'); }
    } finally {
      clearInterval(watchdog);
      if (!ended && turn) {
        const why = controller.signal.reason === 'stalled' ? 'No word from the server for 12 s — the connection looks lost.' : 'Connection lost — the run stopped before it finished.';
        say(turn, 'error', why, () => { turn.remove(); start(body, endpoint); });
      }
      if (running !== controller) return;
      [running, busy, stopButton.hidden] = [null, false, true];
      refreshAsk();
    }
  }
  askForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const config = readConfig();
    const challenge = askForm.dataset.challengeId;
    start(challenge ? { config, prompt: question.value, challenge } : { question: question.value, config, compare: Boolean($('#compare-alone')?.checked) });
  });
  stopButton.addEventListener('click', () => running && running.abort('stopped'));
  $$('[data-lab]').forEach((button) => button.addEventListener('click', () => {
    const [config, runs, challenge] = [readConfig(), Number($('#lab-runs').value), askForm.dataset.challengeId];
    const body = button.dataset.lab === 'tune' ? { config, budget: { generations: runs }, challenge } : { config, runs, challenge };
    start(body, `/challenge/lab/${button.dataset.lab}`);
  }));
  let saved = null;
  try { saved = JSON.parse(stored(STORE)); } catch (_) { /* nothing kept yet */ }
  writeConfig(saved && Array.isArray(saved.layer_agents) ? saved : DEFAULTS);
  keyChanged();
  if (window.matchMedia('(max-width: 56rem)').matches) $('#config-panel').open = false; // one tap away on a phone
})();
