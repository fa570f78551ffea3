//! Most integration tests, one module per former `tests/*.rs` file, linked into one binary:
//! after a change to the library Cargo links this once instead of 27 times, and the slow tests
//! of one area overlap with the quick ones of the others. Run one area with
//! `cargo test --test it grader::`.
//!
//! Separate binaries (`tests/*.rs`) are the tests that need a process of their own: the ones
//! reading the logs the whole process writes (`common::logs`: participants, providers,
//! moa_secrets), the exact counts of the process-wide metrics (metrics), and sandbox.rs, which
//! sets an environment variable for the whole process.

#[path = "../common/mod.rs"]
mod common;

mod api_grade;
mod boards;
mod browser_security;
mod challenge;
mod challenge_browser;
mod challenges;
mod chat_browser;
mod chat_page;
mod cli;
mod crash;
mod evaluations;
mod events;
mod fair_use;
mod faults;
mod grader;
mod harness_integrity;
mod health;
mod live_fanout;
mod load;
mod logging;
mod moa_api;
mod openapi;
mod page_weight;
mod postgres;
mod projector_browser;
mod provider_bodies;
mod providers_browser;
mod room_browser;
mod server_hygiene;
mod storage_faults;
mod unprivileged;
mod workshop;
mod zygote;
