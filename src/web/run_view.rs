//! A run as the pages show it: the server renders every change as an HTML fragment (askama
//! partials, Markdown rendered and sanitized here) and the page only swaps fragments in.
//!
//! A fragment is one or more elements, each with the `id` of the element it updates and an
//! optional `data-swap`: absent replaces that element, `append`/`prepend` add its children to
//! the end/start, `inner` replaces the children (static/chat.js applies them).

use std::time::{Duration, Instant};

use askama::Template;

use crate::moa::budget::thousands;
use crate::moa::{AgentResult, Event, Plan, RunSummary};
use crate::web::markdown::{self, escape_text};

/// The block still being written is rendered again at most this often when it is large (a
/// long code block), so a slow phone is not sent the same kilobytes many times a second.
const TAIL_INTERVAL: Duration = Duration::from_millis(250);
const SMALL_TAIL: usize = 1024;

/// Where a run's view goes on its page.
#[derive(Clone)]
pub enum Placement {
    /// On top of the earlier turns (the chat keeps a conversation).
    Conversation,
    /// In place of the previous result (the challenge shows one generation at a time).
    Result,
    /// Beside the answer of the run with this id (the chat's "main model alone").
    Beside(String),
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Waiting,
    Running,
    Done,
    Failed,
    Stopped,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
            State::Stopped => "stopped",
        }
    }
}

struct Card {
    name: String,
    model: String,
    state: State,
}

pub struct RunView {
    run: String,
    title: String,
    placement: Placement,
    main_model: String,
    /// Per layer, per agent.
    layers: Vec<Vec<Card>>,
    answer: markdown::Streaming,
    tail_sent: Option<Instant>,
}

#[derive(Template)]
#[template(path = "run/turn.html")]
struct TurnTemplate<'a> {
    target: &'a str,
    swap: &'a str,
    run: &'a str,
    title: &'a str,
    status: String,
    layers: Vec<Vec<String>>,
    answer_badge: String,
    main_model: &'a str,
}

#[derive(Template)]
#[template(path = "run/alone.html")]
struct AloneTemplate<'a> {
    target: &'a str,
    run: &'a str,
    title: &'a str,
    status: String,
    answer_badge: String,
}

#[derive(Template)]
#[template(path = "run/agent.html")]
struct AgentTemplate<'a> {
    id: String,
    state: &'a str,
    name: &'a str,
    model: &'a str,
    stats: String,
    text: &'a str,
}

#[derive(Template)]
#[template(path = "run/status.html")]
struct StatusTemplate<'a> {
    run: &'a str,
    kind: &'a str,
    message: &'a str,
}

impl RunView {
    /// The view of `plan`; `multi` shows each model's provider (the server offers several).
    pub fn new(plan: &Plan, title: &str, placement: Placement, multi: bool) -> RunView {
        let label = |provider: &Option<String>, model: &str| match provider {
            Some(provider) if multi => format!("{model} · {provider}"),
            _ => model.to_string(),
        };
        let config = &plan.config;
        let layers = (0..config.cycles)
            .map(|layer| {
                let state = if layer == 0 { State::Running } else { State::Waiting };
                config
                    .layer_agents
                    .iter()
                    .map(|a| Card { name: a.name.clone(), model: label(&a.provider, &a.model), state })
                    .collect()
            })
            .collect();
        RunView {
            run: format!("run-{}", &crate::store::new_id()[..10]),
            title: title.chars().take(200).collect(),
            placement,
            main_model: label(&config.main_provider, &config.main_model),
            layers,
            answer: markdown::Streaming::default(),
            tail_sent: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.run
    }

    pub fn is_beside(&self) -> bool {
        matches!(self.placement, Placement::Beside(_))
    }

    /// The first fragment: the whole run laid out, the first layer running.
    pub fn opening(&self) -> String {
        let (target, swap) = match &self.placement {
            Placement::Conversation => ("turns", "prepend"),
            Placement::Result => ("result", "inner"),
            Placement::Beside(parent) => {
                let target = format!("{parent}-beside");
                return render(&AloneTemplate {
                    target: &target,
                    run: &self.run,
                    title: &self.title,
                    status: self.status("running", ""),
                    answer_badge: self.answer_badge("writing"),
                });
            }
        };
        let layers = (0..self.layers.len())
            .map(|layer| (0..self.layers[layer].len()).map(|i| self.card(layer, i, "", "")).collect())
            .collect();
        render(&TurnTemplate {
            target,
            swap,
            run: &self.run,
            title: &self.title,
            status: self.status("running", ""),
            layers,
            answer_badge: self.answer_badge("waiting"),
            main_model: &self.main_model,
        })
    }

    /// The fragments for one engine event. `after` is what the caller shows below a finished
    /// run (the challenge's extracted code).
    pub fn update(&mut self, event: &Event, after: Option<&str>) -> String {
        match event {
            Event::AgentDelta(delta) => format!(
                r#"<pre id="{}-out" data-swap="append">{}</pre>"#,
                self.card_id(delta.layer as usize - 1, delta.index),
                escape_text(&delta.text)
            ),
            Event::Agent(result) => self.agent_finished(result),
            Event::AnswerDelta(delta) => self.answer_delta(&delta.text),
            Event::Done(summary) => self.done(summary, after),
            Event::Error(failure) => self.failed(&failure.message),
        }
    }

    fn agent_finished(&mut self, result: &AgentResult) -> String {
        let layer = result.layer as usize - 1;
        self.layers[layer][result.index].state = if result.error.is_some() { State::Failed } else { State::Done };
        let tokens = if result.prompt_tokens + result.completion_tokens > 0 {
            format!(" · {} in, {} out tokens", thousands(result.prompt_tokens), thousands(result.completion_tokens))
        } else {
            String::new()
        };
        let stats = format!("{}{tokens}", seconds(result.ms));
        let text = result.error.as_deref().unwrap_or(&result.text);
        let mut html = self.card(layer, result.index, &stats, text);
        // The layer's last answer starts the next layer, or the main model.
        if self.layers[layer].iter().all(|c| matches!(c.state, State::Done | State::Failed)) {
            if let Some(next) = self.layers.get_mut(layer + 1) {
                next.iter_mut().for_each(|c| c.state = State::Running);
                (0..self.layers[layer + 1].len()).for_each(|i| html += &self.card(layer + 1, i, "", ""));
            } else {
                html += &self.answer_badge("writing");
            }
        }
        html
    }

    fn answer_delta(&mut self, text: &str) -> String {
        let rendered = self.answer.push(text);
        let mut html = String::new();
        if let Some(complete) = &rendered.complete {
            html += &format!(r#"<div id="{}-md" data-swap="append">{complete}</div>"#, self.run);
        }
        let due = rendered.tail.len() < SMALL_TAIL || self.tail_sent.is_none_or(|at| at.elapsed() >= TAIL_INTERVAL);
        if due || rendered.complete.is_some() {
            self.tail_sent = Some(Instant::now());
            html += &format!(r#"<div class="markdown" id="{}-tail">{}</div>"#, self.run, rendered.tail);
        }
        html
    }

    fn done(&mut self, summary: &RunSummary, after: Option<&str>) -> String {
        let failed = match summary.failed_agents {
            0 => String::new(),
            1 => " · 1 agent call failed".into(),
            n => format!(" · {n} agent calls failed"),
        };
        let message = format!(
            "Done in {} · {} calls · {} prompt + {} completion tokens{failed}",
            seconds(summary.ms),
            summary.calls,
            thousands(summary.prompt_tokens),
            thousands(summary.completion_tokens)
        );
        let mut html = self.status("ok", &message) + &self.answer_badge("done");
        html += &format!(
            r#"<div class="markdown" id="{run}-md">{}</div><div class="markdown" id="{run}-tail"></div>"#,
            self.answer.finish(),
            run = self.run
        );
        if let Some(after) = after {
            html += &format!(r#"<div id="{}-after">{after}</div>"#, self.run);
        }
        html
    }

    /// The reason goes on top of the run; agents that were answering show they were stopped.
    fn failed(&mut self, message: &str) -> String {
        let mut html = self.status("error", message);
        for layer in 0..self.layers.len() {
            for i in 0..self.layers[layer].len() {
                if self.layers[layer][i].state == State::Running {
                    self.layers[layer][i].state = State::Stopped;
                    html += &self.card(layer, i, "", "");
                }
            }
        }
        html + &self.answer_badge("stopped")
    }

    fn card_id(&self, layer: usize, index: usize) -> String {
        format!("{}-{}-{index}", self.run, layer + 1)
    }

    fn card(&self, layer: usize, index: usize, stats: &str, text: &str) -> String {
        let card = &self.layers[layer][index];
        render(&AgentTemplate {
            id: self.card_id(layer, index),
            state: card.state.label(),
            name: &card.name,
            model: &card.model,
            stats: stats.to_string(),
            text,
        })
    }

    fn status(&self, kind: &str, message: &str) -> String {
        render(&StatusTemplate { run: &self.run, kind, message })
    }

    fn answer_badge(&self, state: &str) -> String {
        format!(r#"<span class="badge" id="{}-answer" data-state="{state}">{state}</span>"#, self.run)
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// Partials are plain data; a failure to render one is a bug in this file.
fn render(template: &impl Template) -> String {
    template.render().expect("run partials render")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Offer;
    use crate::moa::{AnswerDelta, Config};

    fn plan(cycles: u32) -> Plan {
        let mut config = Config { cycles, ..Config::default() };
        config.layer_agents[0].name = "<b>bold</b>".into();
        let offer = Offer::single(crate::config::parse_models(crate::config::DEFAULT_MODELS).unwrap());
        crate::moa::prepare(config, "Why?", &offer).unwrap()
    }

    fn result(layer: u32) -> Event {
        Event::Agent(AgentResult {
            layer,
            index: 0,
            agent: "a".into(),
            provider: "p".into(),
            model: "m".into(),
            text: "<script>x</script>".into(),
            ms: 1500,
            error: None,
            prompt_tokens: 1200,
            completion_tokens: 30,
        })
    }

    #[test]
    fn the_opening_lays_out_every_layer_with_escaped_names() {
        let view = RunView::new(&plan(2), "Why <now>?", Placement::Conversation, false);
        let html = view.opening();
        assert!(html.starts_with(r#"<div id="turns" data-swap="prepend">"#), "{html}");
        assert_eq!(html.matches(r#"class="agent-run""#).count(), 2);
        assert!(html.contains("&#60;b&#62;bold") && html.contains("Why &#60;now&#62;?"), "{html}");
        assert_eq!(html.matches(r#"data-state="running""#).count(), 1, "only layer 1 runs");
    }

    #[test]
    fn a_finished_layer_starts_the_next_and_text_stays_text() {
        let mut view = RunView::new(&plan(2), "q", Placement::Result, false);
        let html = view.update(&result(1), None);
        assert!(html.contains("&#60;script&#62;") && !html.contains("<script>"), "agent text: {html}");
        assert!(!html.contains("<b>"), "agent names: {html}");
        assert!(html.contains("1.5 s · 1,200 in, 30 out tokens"), "{html}");
        assert!(html.contains(&format!(r#"id="{}-2-0" data-state="running""#, view.run)), "{html}");
        let html = view.update(&result(2), None);
        assert!(html.contains(r#"data-state="writing""#), "the main model writes next: {html}");
        let html = view.update(&Event::AnswerDelta(AnswerDelta { text: "**hi**".into() }), None);
        assert!(html.contains("<strong>hi</strong>"), "{html}");
    }

    #[test]
    fn a_failure_puts_the_reason_on_top_and_stops_running_agents() {
        let mut view = RunView::new(&plan(2), "q", Placement::Conversation, false);
        let html = view.update(&Event::error("The key <was> rejected."), None);
        assert!(html.contains(r#"<p class="notice error">The key &#60;was&#62; rejected.</p>"#), "{html}");
        assert_eq!(html.matches(r#"data-state="stopped""#).count(), 2, "one card and the answer: {html}");
    }
}
