//! moa-workshop: a Mixture-of-Agents workshop server.
//!
//! `config` → `store` (database), `grader` (sandboxed grading), `llm` (model providers) and
//! `moa` (the engine) → `live` (this instance's boards and fair-use counts) → `state` (what
//! handlers share) → `web` (axum routes); `app` wires them at start-up; `cli` is what `main`
//! calls. Nothing below `web` imports it.

pub mod app;
pub mod cli;
pub mod config;
pub mod error;
pub mod evaluate;
pub mod grader;
pub mod live;
pub mod llm;
pub mod metrics;
pub mod moa;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;
