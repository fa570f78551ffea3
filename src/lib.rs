//! moa-workshop: a Mixture-of-Agents workshop server.
//!
//! `config` → `store` (database) and `grader` (sandboxed grading) → `web` (axum routes),
//! wired together in `app`; `cli` is what `main` calls.

pub mod app;
pub mod cli;
pub mod config;
pub mod error;
pub mod grader;
pub mod llm;
pub mod metrics;
pub mod moa;
pub mod store;
pub mod telemetry;
pub mod web;
