// MoA chat page: the configuration panel, a run as a POST whose body is a stream of
// server-sent events (EventSource cannot POST), a live timeline per layer and agent, and the
// final answer rendered as sanitized Markdown. No dependencies, no build step.
// The challenge page reuses it: #ask[data-endpoint=/api/generate][data-participant] posts
// {participant, config, prompt}, and each finished run dispatches a bubbling `moa:done`;
// window.moaChat gives it the configuration and a way to hold the run button back.
// A participant's own API key lives in localStorage and goes only with runs, as a header.
'use strict';
(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const form = $('#config');
  if (!form) return;

  const PLACEHOLDER = '{helper_response}';
  const STORE = form.dataset.store || 'moa-config';
  const MAX_AGENTS = Number(form.dataset.maxAgents) || 8;
  const DEFAULTS = JSON.parse(form.dataset.defaults);
  // [{name, models: [{name, context_tokens}], discovered}], the default provider first.
  const PROVIDERS = JSON.parse(form.dataset.providers);
  const DEFAULT_PROVIDER = PROVIDERS[0].name;
  // The server sends a comment every 15 s; this long without a byte means the link is gone.
  const STALL_MS = 40000;
  const askForm = $('#ask');
  const askButton = $('#ask-button');
  const stopButton = $('#stop');
  // Generating needs a display name first (the challenge page).
  const needsName = askForm.dataset.endpoint === '/api/generate' && !askForm.dataset.participant;
  let busy = false;
  let blocked = false;

  /** An element with a class and text (text is never parsed as HTML). */
  function h(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // ---- Configuration panel ----

  const agentsList = $('#agents');
  const agentTemplate = $('#agent-template');
  const configError = $('#config-error');
  const AGENT_FIELDS = ['name', 'temperature', 'max_tokens', 'prompt'];

  function setValue(input, value) {
    // An imported model this server does not offer stays visible, so the server's 400 names it.
    if (input.tagName === 'SELECT' && ![...input.options].some((o) => o.value === String(value))) {
      input.add(new Option(`${value} (not offered here)`, value));
    }
    input.value = value;
  }

  // A configuration without a provider (the workshop's own format) or saying "default" means the default one.
  const providerOf = (name) => (!name || name === 'default' ? DEFAULT_PROVIDER : name);

  /** Lists the models of `provider` in `select` (only when there is a choice of providers). */
  function offerModels(select, provider, withContext) {
    const found = PROVIDERS.find((p) => p.name === provider);
    if (!found || PROVIDERS.length < 2) return;
    const keep = select.value;
    select.replaceChildren(...found.models.map((m) => new Option(withContext ? `${m.name} (${m.context_tokens} tokens)` : m.name, m.name)));
    if (found.models.some((m) => m.name === keep)) select.value = keep;
  }

  /** Sets a provider select (if the page has one) and the model select below it. */
  function setModel(providerSelect, modelSelect, provider, model, withContext) {
    if (providerSelect) setValue(providerSelect, providerOf(provider));
    offerModels(modelSelect, providerOf(provider), withContext);
    setValue(modelSelect, model);
  }

  function agentElement(agent) {
    const li = agentTemplate.content.firstElementChild.cloneNode(true);
    for (const field of AGENT_FIELDS) setValue(li.querySelector(`[name=${field}]`), agent[field] ?? '');
    setModel(li.querySelector('[name=provider]'), li.querySelector('[name=model]'), agent.provider, agent.model ?? '', false);
    return li;
  }

  const number = (value) => (String(value).trim() === '' ? NaN : Number(value));

  function readConfig() {
    const f = form.elements;
    return {
      main_provider: f.main_provider ? f.main_provider.value : DEFAULT_PROVIDER,
      main_model: f.main_model.value,
      main_temperature: number(f.main_temperature.value),
      cycles: number(f.cycles.value),
      system_prompt: f.system_prompt.value,
      layer_agents: [...agentsList.children].map((li) => {
        const get = (field) => li.querySelector(`[name=${field}]`).value;
        return {
          name: get('name').trim(),
          provider: li.querySelector('[name=provider]')?.value ?? DEFAULT_PROVIDER,
          model: get('model'),
          temperature: number(get('temperature')),
          prompt: get('prompt'),
          max_tokens: number(get('max_tokens')),
        };
      }),
    };
  }

  function writeConfig(config) {
    const f = form.elements;
    setModel(f.main_provider, f.main_model, config.main_provider, config.main_model, true);
    f.main_temperature.value = config.main_temperature;
    f.cycles.value = config.cycles;
    f.system_prompt.value = config.system_prompt;
    agentsList.replaceChildren(...config.layer_agents.map(agentElement));
    configChanged();
  }

  /** Accepts the export wrapper or the inner object; returns null when it is neither. */
  function unwrap(data) {
    const config = data && typeof data === 'object' && data.ai_configuration ? data.ai_configuration : data;
    const ok = config && typeof config === 'object' && Array.isArray(config.layer_agents) &&
      typeof config.system_prompt === 'string' && typeof config.main_model === 'string';
    return ok ? config : null;
  }

  /** The first problem as a sentence (the server checks again), marking the fields at fault. */
  function problemWith(config) {
    const problems = [];
    const mark = (el, message) => {
      el.hidden = !message;
      el.textContent = message || '';
      if (message) problems.push(message);
    };
    const needsPlaceholder = (text) => (text.includes(PLACEHOLDER) ? '' : `Must contain ${PLACEHOLDER}.`);
    mark($('[data-error-for=system_prompt]', form), needsPlaceholder(config.system_prompt) && `The main system prompt must contain ${PLACEHOLDER}.`);
    [...agentsList.children].forEach((li, i) => {
      const agent = config.layer_agents[i];
      const who = agent.name ? `Agent "${agent.name}"` : `Agent ${i + 1}`;
      let message = '';
      if (!agent.name) message = `${who} needs a name.`;
      else if (needsPlaceholder(agent.prompt)) message = `${who}'s prompt must contain ${PLACEHOLDER}.`;
      else if (!(agent.temperature >= 0 && agent.temperature <= 1)) message = `${who}'s temperature must be between 0 and 1.`;
      else if (!(Number.isInteger(agent.max_tokens) && agent.max_tokens >= 1 && agent.max_tokens <= 4096)) message = `${who}'s max tokens must be a whole number from 1 to 4096.`;
      mark(li.querySelector('[data-error-for=prompt]'), message);
    });
    if (!(Number.isInteger(config.cycles) && config.cycles >= 1 && config.cycles <= 10)) problems.unshift('Layers must be a whole number from 1 to 10.');
    if (!(config.main_temperature >= 0 && config.main_temperature <= 1)) problems.unshift('The main temperature must be between 0 and 1.');
    if (!config.layer_agents.length) problems.unshift('Add at least one layer agent.');
    return problems[0] || null;
  }

  function showConfigError(message) {
    configError.hidden = !message;
    configError.textContent = message || '';
  }

  function configChanged() {
    const count = agentsList.children.length;
    $('#agent-count').textContent = `(${count} of at most ${MAX_AGENTS})`;
    $('#add-agent').disabled = count >= MAX_AGENTS;
    for (const button of agentsList.querySelectorAll('[data-action=remove]')) button.disabled = count <= 1;
    const config = readConfig();
    problemWith(config);
    showConfigError(null);
    try {
      localStorage.setItem(STORE, JSON.stringify(config));
    } catch (_) { /* private mode: the configuration just is not kept */ }
    refreshAsk();
  }

  function uniqueName(base) {
    const taken = new Set(readConfig().layer_agents.map((a) => a.name));
    for (let i = 2; ; i++) if (!taken.has(`${base}_${i}`)) return `${base}_${i}`;
  }

  form.addEventListener('input', configChanged);
  // Not every way of picking an option fires `input`; `change` always comes.
  form.addEventListener('change', (event) => {
    const select = event.target.closest('[name=provider], [name=main_provider]');
    if (select) {
      // Another provider offers other models.
      const main = select.name === 'main_provider';
      offerModels(main ? form.elements.main_model : select.closest('li').querySelector('[name=model]'), select.value, main);
    }
    configChanged();
  });
  form.addEventListener('submit', (event) => event.preventDefault());
  agentsList.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const li = button.closest('li');
    if (button.dataset.action === 'remove' && agentsList.children.length > 1) li.remove();
    if (button.dataset.action === 'duplicate' && agentsList.children.length < MAX_AGENTS) {
      const agent = readConfig().layer_agents[[...agentsList.children].indexOf(li)];
      li.after(agentElement({ ...agent, name: uniqueName(agent.name.replace(/_\d+$/, '') || 'agent') }));
    }
    configChanged();
  });
  $('#add-agent').addEventListener('click', () => {
    const template = DEFAULTS.layer_agents[0];
    agentsList.append(agentElement({ ...template, name: uniqueName('agent') }));
    configChanged();
  });
  $('#reset').addEventListener('click', () => writeConfig(DEFAULTS));

  $('#export').addEventListener('click', () => {
    const pad = (n) => String(n).padStart(2, '0');
    const d = new Date();
    const stamp = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    const text = JSON.stringify({ ai_configuration: readConfig(), exported_at: stamp, version: '2.0' }, null, 2);
    const link = h('a');
    link.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    link.download = 'moa-config.json';
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 5000);
  });

  $('#import').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    event.target.value = '';
    if (!file) return;
    let config = null;
    try {
      config = unwrap(JSON.parse(await file.text()));
    } catch (_) { /* reported below */ }
    if (!config) {
      showConfigError(`${file.name} is not a workshop configuration (expected {"ai_configuration": {...}}).`);
      return;
    }
    writeConfig({ ...DEFAULTS, ...config });
  });

  // ---- The participant's own API key: this browser only, sent with runs as a header ----

  const KEY_STORE = 'moa-api-key';
  const keyBox = $('#key-box');
  const keyInput = $('#user-key');
  const EVENT_KEY = keyBox.dataset.eventKey === 'true';
  const REQUIRE_OWN_KEY = keyBox.dataset.require === 'true';
  let ownKey = '';
  try {
    ownKey = (localStorage.getItem(KEY_STORE) || '').trim();
  } catch (_) { /* private mode: the key lasts as long as the page */ }

  function setOwnKey(key) {
    ownKey = key.trim();
    try {
      if (ownKey) localStorage.setItem(KEY_STORE, ownKey);
      else localStorage.removeItem(KEY_STORE);
    } catch (_) { /* kept in memory only */ }
    keyChanged();
  }

  function keyChanged() {
    const status = $('#key-status');
    const whose = ownKey ? 'yours' : EVENT_KEY ? 'event' : 'none';
    status.dataset.key = whose;
    status.textContent = {
      yours: 'Key in use: your key (kept in this browser only).',
      event: "Key in use: the event's key.",
      none: REQUIRE_OWN_KEY ? 'No key: set one (this event asks everyone to use their own).' : 'No key: set one.',
    }[whose];
    const notice = $('#no-key');
    if (notice) notice.hidden = Boolean(ownKey);
    refreshAsk();
  }

  const usesDefaultProvider = (config) => providerOf(config.main_provider) === DEFAULT_PROVIDER ||
    config.layer_agents.some((agent) => providerOf(agent.provider) === DEFAULT_PROVIDER);

  /** Run only with a key for the default provider (if the run uses it), a name, and nothing holding it back. */
  function refreshAsk() {
    const keyReady = Boolean(ownKey) || EVENT_KEY || !usesDefaultProvider(readConfig());
    askButton.disabled = busy || blocked || needsName || !keyReady;
    askButton.title = keyReady ? '' : 'Paste your API key first';
  }

  keyInput.value = ownKey;
  keyInput.addEventListener('input', () => setOwnKey(keyInput.value));
  $('#forget-key').addEventListener('click', () => {
    keyInput.value = '';
    setOwnKey('');
  });
  // Pasted or forgotten in another tab.
  window.addEventListener('storage', (event) => {
    if (event.key !== KEY_STORE) return;
    ownKey = (event.newValue || '').trim();
    keyInput.value = ownKey;
    keyChanged();
  });

  let saved = null;
  try {
    saved = unwrap(JSON.parse(localStorage.getItem(STORE)));
  } catch (_) { /* nothing kept yet */ }
  writeConfig(saved || DEFAULTS);
  keyChanged();
  // On a phone the panel would push the conversation far down; it stays one tap away.
  if (window.matchMedia('(max-width: 56rem)').matches) $('#config-panel').open = false;

  // ---- Markdown, sanitized: everything is escaped first, then a few constructs get tags ----

  const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

  function inline(text) {
    return escapeHtml(text)
      .split(/(`[^`\n]+`)/)
      .map((part, i) => (i % 2
        ? `<code>${part.slice(1, -1)}</code>`
        : part
          .replace(/\*\*(\S(?:.*?\S)?)\*\*/g, '<strong>$1</strong>')
          .replace(/(^|\W)__(\S(?:.*?\S)?)__(?!\w)/g, '$1<strong>$2</strong>')
          .replace(/(^|[^*\w])\*(\S(?:.*?\S)?)\*(?![*\w])/g, '$1<em>$2</em>')
          .replace(/(^|[^_\w])_(\S(?:.*?\S)?)_(?![_\w])/g, '$1<em>$2</em>')))
      .join('');
  }

  function markdown(source) {
    const out = [];
    let paragraph = [];
    let list = null;
    let fence = null;
    const closeParagraph = () => {
      if (paragraph.length) out.push(`<p>${paragraph.map(inline).join('<br>')}</p>`);
      paragraph = [];
    };
    const closeList = () => {
      if (list) out.push(`<${list.tag}>${list.items.map((item) => `<li>${inline(item)}</li>`).join('')}</${list.tag}>`);
      list = null;
    };
    const closeFence = () => out.push(`<pre><code>${escapeHtml(fence.join('\n'))}</code></pre>`);
    for (const line of source.split(/\r?\n/)) {
      let m;
      if (fence) {
        if (/^\s*```/.test(line)) {
          closeFence();
          fence = null;
        } else fence.push(line);
      } else if (/^\s*```/.test(line)) {
        closeParagraph();
        closeList();
        fence = [];
      } else if (!line.trim()) {
        closeParagraph();
        closeList();
      } else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
        closeParagraph();
        closeList();
        const level = Math.min(m[1].length + 2, 6); // the page already has h1 and h2
        out.push(`<h${level}>${inline(m[2])}</h${level}>`);
      } else if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
        closeParagraph();
        closeList();
        out.push('<hr>');
      } else if ((m = /^\s*([-*+]|\d{1,3}[.)])\s+(.*)$/.exec(line))) {
        closeParagraph();
        const tag = /\d/.test(m[1]) ? 'ol' : 'ul';
        if (list && list.tag !== tag) closeList();
        if (!list) list = { tag, items: [] };
        list.items.push(m[2]);
      } else if (list && /^\s+\S/.test(line)) {
        list.items[list.items.length - 1] += ` ${line.trim()}`;
      } else {
        closeList();
        paragraph.push(line);
      }
    }
    if (fence) closeFence();
    closeParagraph();
    closeList();
    return out.join('');
  }

  // ---- A run: the timeline of one question ----

  const turns = $('#turns');
  const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
  const modelLabel = (provider, model) => (PROVIDERS.length > 1 ? `${model} · ${providerOf(provider)}` : model);

  class Turn {
    constructor(question) {
      this.el = h('article', 'turn card');
      this.el.append(h('h2', 'question', askForm.dataset.turnTitle || question));
      this.layersEl = h('div', 'layers');
      this.answerEl = h('section', 'answer');
      this.statusEl = h('div', 'run-status');
      this.el.append(this.layersEl, this.answerEl, this.statusEl);
      turns.prepend(this.el);
    }

    /** Lays out every layer and agent from the configuration, before any event arrives. */
    reset(config) {
      this.config = config;
      this.layers = [];
      this.layersEl.replaceChildren();
      for (let layer = 1; layer <= config.cycles; layer++) {
        const section = h('section', 'layer');
        section.append(h('h3', '', `Layer ${layer}`));
        const list = h('ul', 'agent-runs');
        const agents = config.layer_agents.map((agent) => {
          const li = h('li', 'agent-run');
          const details = h('details');
          details.open = true;
          const summary = h('summary');
          const badge = h('span', 'badge');
          const stats = h('span', 'stats');
          summary.append(badge, ' ', h('strong', '', agent.name), ' ', h('span', 'muted', modelLabel(agent.provider, agent.model)), ' ', stats);
          const output = h('pre', 'out');
          details.append(summary, output);
          li.append(details);
          list.append(li);
          return { li, badge, stats, output, text: '', finished: false };
        });
        section.append(list);
        this.layersEl.append(section);
        this.layers.push({ agents, started: 0, finished: 0 });
      }
      this.answerEl.replaceChildren();
      const head = h('h3', '', 'Answer ');
      this.answerBadge = h('span', 'badge');
      head.append(this.answerBadge, ' ', h('span', 'muted', modelLabel(config.main_provider, config.main_model)));
      this.answerBody = h('div', 'markdown');
      this.answerEl.append(head, this.answerBody);
      this.answerText = '';
      this.statusEl.replaceChildren();
      this.setAnswerState('waiting');
      this.startLayer(0);
      clearInterval(this.ticker);
      this.ticker = setInterval(() => this.tick(), 500);
    }

    setState(agent, state, label) {
      agent.li.dataset.state = state;
      agent.badge.textContent = label || state;
    }

    setAnswerState(state) {
      this.answerEl.dataset.state = state;
      this.answerBadge.textContent = state;
    }

    startLayer(i) {
      const layer = this.layers[i];
      if (!layer) {
        this.setAnswerState('writing');
        return;
      }
      layer.started = Date.now();
      for (const agent of layer.agents) this.setState(agent, 'running');
    }

    /** Shows the elapsed time of agents still running, so a slow model looks alive. */
    tick() {
      for (const layer of this.layers) {
        if (!layer.started) continue;
        for (const agent of layer.agents) {
          if (!agent.finished) agent.stats.textContent = seconds(Date.now() - layer.started);
        }
      }
    }

    agent(data) {
      return this.layers[data.layer - 1] && this.layers[data.layer - 1].agents[data.index];
    }

    handle(name, data) {
      if (name === 'agent_delta') {
        const agent = this.agent(data);
        if (!agent) return;
        agent.text += data.text;
        agent.output.textContent = agent.text;
      } else if (name === 'agent') {
        const agent = this.agent(data);
        if (!agent || agent.finished) return;
        agent.finished = true;
        const tokens = data.prompt_tokens || data.completion_tokens ? ` · ${data.prompt_tokens} in, ${data.completion_tokens} out tokens` : '';
        agent.stats.textContent = `${seconds(data.ms)}${tokens}`;
        if (data.error) {
          this.setState(agent, 'failed');
          agent.output.textContent = data.error;
        } else {
          this.setState(agent, 'done');
          agent.output.textContent = data.text;
        }
        const layer = this.layers[data.layer - 1];
        if (++layer.finished === layer.agents.length) this.startLayer(data.layer);
      } else if (name === 'answer_delta') {
        this.setAnswerState('writing');
        this.answerText += data.text;
        if (!this.renderQueued) {
          this.renderQueued = true;
          requestAnimationFrame(() => {
            this.renderQueued = false;
            this.answerBody.innerHTML = markdown(this.answerText);
          });
        }
      } else if (name === 'done') {
        this.answerBody.innerHTML = markdown(this.answerText);
        this.setAnswerState('done');
        const failed = data.failed_agents ? ` · ${data.failed_agents} agent call(s) failed` : '';
        this.finish('ok', `Done in ${seconds(data.ms)} · ${data.calls} calls · ${data.prompt_tokens} prompt + ${data.completion_tokens} completion tokens${failed}`);
        this.el.dispatchEvent(new CustomEvent('moa:done', { bubbles: true, detail: data }));
      } else if (name === 'error') {
        this.fail(data.message);
      }
    }

    interruptRunning(label) {
      for (const layer of this.layers) {
        for (const agent of layer.agents) if (!agent.finished && agent.li.dataset.state === 'running') this.setState(agent, 'stopped', label);
      }
      if (this.answerEl.dataset.state !== 'done') this.setAnswerState(label);
    }

    finish(kind, message, action) {
      clearInterval(this.ticker);
      const note = h('p', `notice ${kind}`, message);
      if (action) {
        const button = h('button', 'secondary', action.label);
        button.type = 'button';
        button.addEventListener('click', action.run);
        note.append(' ', button);
      }
      this.statusEl.replaceChildren(note);
    }

    fail(message) {
      this.interruptRunning('stopped');
      this.finish('error', message || 'The run failed.');
    }

    stopped() {
      this.interruptRunning('stopped');
      this.finish('', 'Stopped.');
    }

    lost(retry) {
      this.interruptRunning('interrupted');
      this.finish('error', 'Connection lost — the run stopped before it finished.', { label: 'Retry', run: retry });
    }
  }

  // ---- The stream ----

  function parseFrame(frame) {
    let name = 'message';
    const data = [];
    for (const line of frame.split('\n')) {
      if (!line || line[0] === ':') continue; // keep-alive comments
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return null;
    try {
      return { name, data: JSON.parse(data.join('\n')) };
    } catch (_) {
      return null;
    }
  }

  let running = null;

  function setBusy(value) {
    busy = value;
    stopButton.hidden = !busy;
    refreshAsk();
  }

  async function stream(question, config, turn, controller) {
    let lastByte = Date.now();
    let ended = false;
    const watchdog = setInterval(() => {
      if (Date.now() - lastByte > STALL_MS) controller.abort('stalled');
    }, 2000);
    try {
      const participant = askForm.dataset.participant;
      const body = participant ? { participant, config, prompt: question } : { question, config };
      // The challenge page names the challenge picked in its ?challenge= select.
      if (participant && askForm.dataset.challengeId) body.challenge = askForm.dataset.challengeId;
      const headers = { 'content-type': 'application/json', accept: 'text/event-stream' };
      if (ownKey && usesDefaultProvider(config)) headers['x-llm-api-key'] = ownKey;
      const response = await fetch(askForm.dataset.endpoint || '/api/moa', {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        let message = `The server answered with status ${response.status}.`;
        try {
          message = (await response.json()).error || message;
        } catch (_) { /* keep the status sentence */ }
        turn.fail(message);
        ended = true;
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        lastByte = Date.now();
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = parseFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (!event) continue;
          turn.handle(event.name, event.data);
          if (event.name === 'done' || event.name === 'error') ended = true;
        }
      }
    } catch (_) {
      if (controller.signal.reason === 'stopped') {
        turn.stopped();
        ended = true;
      }
    } finally {
      clearInterval(watchdog);
      if (!ended) turn.lost(() => start(question, config, turn));
    }
  }

  function start(question, config, turn) {
    if (running) running.abort('stopped');
    turn = turn || new Turn(question);
    turn.reset(config);
    const controller = new AbortController();
    running = controller;
    setBusy(true);
    stream(question, config, turn, controller).finally(() => {
      if (running === controller) {
        running = null;
        setBusy(false);
      }
    });
  }

  askForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const question = $('#question').value.trim();
    if (!question) return;
    const config = readConfig();
    const problem = problemWith(config);
    if (problem) {
      $('#config-panel').open = true;
      showConfigError(problem);
      return;
    }
    start(question, config, null);
  });
  stopButton.addEventListener('click', () => running && running.abort('stopped'));

  window.moaChat = {
    readConfig,
    /** Holds the run button back (the challenge page does while the estimate overflows). */
    setBlocked(value) {
      blocked = value;
      refreshAsk();
    },
  };
})();
