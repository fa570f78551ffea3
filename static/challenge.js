// Challenge page, on top of chat.js (which drives the configuration and the run): presets,
// the prompt box, the live token estimate and prompt inspector, and, after a generation,
// the extracted code, the Submit button and the score breakdown. No build step.
'use strict';
(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  // Picking another challenge reloads the page for it (?challenge=ID): brief, presets, guide.
  const choice = $('#challenge-select');
  if (choice) choice.addEventListener('change', () => choice.form.submit());
  const form = $('#config');
  const ask = $('#ask');
  if (!form || !ask) return;
  const question = $('#question');

  function h(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // chat.js reads the form (and validates it on submit).
  const currentConfig = () => window.moaChat.readConfig();

  // ---- Presets and prompts ----

  for (const button of document.querySelectorAll('.preset')) {
    button.addEventListener('click', () => {
      form.elements.system_prompt.value = button.dataset.preset;
      form.dispatchEvent(new Event('input', { bubbles: true }));
    });
  }
  $('#prompt-choice').addEventListener('change', (event) => {
    question.value = event.target.value === 'challenge' ? question.dataset.challenge : event.target.value;
    scheduleEstimate();
  });

  // ---- Token estimate and prompt inspector (the server computes both) ----

  const estimate = $('#estimate');
  const inspector = $('#inspector-body');
  let timer = null;
  let sequence = 0;

  function scheduleEstimate() {
    clearTimeout(timer);
    timer = setTimeout(runEstimate, 500);
  }

  async function runEstimate() {
    const mine = ++sequence;
    let body;
    try {
      const response = await fetch('/api/inspect', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ config: currentConfig(), prompt: question.value, challenge: ask.dataset.challengeId }),
      });
      body = await response.json();
      if (mine !== sequence) return;
      if (!response.ok) {
        showEstimate(body.error || 'The configuration is not valid yet.', true);
        return;
      }
    } catch (_) {
      if (mine === sequence) showEstimate('Could not reach the server for an estimate.', false);
      return;
    }
    const b = body.budget;
    const line = `The main model (${b.main_model}) would read about ${b.main_input.toLocaleString()} of ${b.main_context.toLocaleString()} tokens and may answer with up to ${b.main_answer.toLocaleString()}.`;
    showEstimate(b.problem ? `${line} ${b.problem}` : line, Boolean(b.problem));
    const several = new Set(body.messages.map((m) => m.provider)).size > 1;
    inspector.replaceChildren(...body.messages.map((m) => {
      const box = h('details', 'inspect');
      box.append(h('summary', '', `${m.who} — ${m.model}${several ? ` on ${m.provider}` : ''}, up to ${m.max_tokens} tokens`));
      box.append(h('h4', '', 'System'), h('pre', 'out', m.system), h('h4', '', 'User'), h('pre', 'out', m.user));
      return box;
    }));
  }

  function showEstimate(text, blocking) {
    estimate.textContent = text;
    estimate.className = blocking ? 'notice error small' : 'muted small';
    // An overflowing configuration is refused by the server too; say so before it is tried.
    window.moaChat.setBlocked(blocking);
  }

  form.addEventListener('input', scheduleEstimate);
  form.addEventListener('click', (event) => { if (event.target.closest('button')) scheduleEstimate(); });
  question.addEventListener('input', scheduleEstimate);
  scheduleEstimate();

  // ---- After a generation: the code, Submit, the grade ----

  const result = $('#result');

  document.addEventListener('moa:done', (event) => {
    const data = event.detail;
    if (!data.generation_id) return;
    const card = h('div', 'card generated');
    card.append(h('h3', '', 'Extracted function'));
    if (!data.code) card.append(h('p', 'notice error', 'No code was found in the answer: ask the main model to reply with one ```python block.'));
    card.append(h('pre', 'out code', data.code || ''));
    const submit = h('button', '', 'Submit for grading');
    submit.type = 'button';
    submit.id = 'submit-code';
    const status = h('span', 'muted');
    card.append(submit, ' ', status);
    result.replaceChildren(card);
    submit.addEventListener('click', () => submitGeneration(data.generation_id, submit, status, card));
  });

  async function submitGeneration(generationId, button, status, card) {
    button.disabled = true;
    status.textContent = 'Grading in the sandbox…';
    let body;
    let response;
    try {
      response = await fetch('/api/submissions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ participant: ask.dataset.participant, generation_id: generationId }),
      });
      body = await response.json();
    } catch (_) {
      status.textContent = 'Connection lost while grading; press Submit again (it is never counted twice).';
      button.disabled = false;
      return;
    }
    if (!response.ok) {
      const wait = response.headers.get('retry-after');
      status.textContent = body.error || `The server answered with status ${response.status}.`;
      button.disabled = false;
      if (wait) setTimeout(() => { status.textContent += ' You can retry now.'; }, Number(wait) * 1000);
      return;
    }
    status.textContent = '';
    button.remove();
    card.append(report(body));
    const row = h('tr');
    row.append(h('td', '', 'just now'), h('td', '', `${body.total} / ${body.max}`), h('td', '', body.status));
    $('#history tbody').prepend(row);
  }

  function report(r) {
    const box = h('div', 'report');
    const rank = r.rank ? ` · rank ${r.rank} on the leaderboard` : '';
    box.append(h('p', 'score', `${r.total} / ${r.max} — grade ${r.grade}${rank}`));
    if (r.reason) box.append(h('p', r.status === 'graded' ? 'muted' : 'notice error', r.reason));
    if (r.categories && r.checks.length) {
      box.append(h('p', 'muted', r.categories.map((c) => `${c.title}: ${c.points}/${c.max}`).join(' · ')));
    }
    if (r.validation && r.validation.length && !r.checks.length) {
      const list = h('ul');
      for (const v of r.validation) list.append(h('li', v.passed ? 'pass' : 'fail', `${v.id} ${v.description}: ${v.reason}`));
      box.append(list);
    }
    if (r.checks.length) {
      const table = h('table', 'checks');
      const head = h('tr');
      head.append(h('th', '', 'Check'), h('th', '', 'Points'), h('th', '', 'Why'));
      table.append(head);
      for (const c of r.checks) {
        const row = h('tr', c.passed ? 'pass' : 'fail');
        row.append(h('td', '', c.title || c.id), h('td', '', `${c.points}/${c.max}`), h('td', '', c.reason));
        table.append(row);
      }
      box.append(table);
    }
    return box;
  }
})();
