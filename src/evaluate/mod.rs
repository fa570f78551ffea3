//! Measuring a configuration over many runs, free of HTTP: the statistics of an evaluation,
//! whether two are really different, and the moves a tuning search tries. The web layer runs
//! the generations (`web/evaluations.rs`) and draws the charts (`web/charts.rs`); everything
//! here is arithmetic and configuration.

pub mod tune;

use std::collections::BTreeMap;

use serde::Serialize;

/// One graded generation of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Trial {
    pub score: u32,
    /// `graded`, `rejected`, `failed_validation`, `timed_out`, or `no_code` / `failed` when no
    /// grade could be had (no code in the answer, the run failed).
    pub status: String,
    /// Points per check, in the challenge's order.
    pub checks: BTreeMap<String, u32>,
    /// Checks that lost points, with the grader's reason: what a tuning step learns from.
    pub missed: Vec<(String, String)>,
    pub calls: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub ms: u64,
}

/// What a set of trials adds up to (the `done` event of `POST /api/evaluations`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    pub runs: usize,
    pub scores: Vec<u32>,
    pub mean: f64,
    pub median: f64,
    pub min: u32,
    pub max: u32,
    /// Sample standard deviation (n − 1); 0 for one run.
    pub stdev: f64,
    /// Per check: the share of runs that earned its full points.
    pub check_pass_rate: BTreeMap<String, f64>,
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// The summary of `trials`; `full` gives each check's full points.
pub fn summarize(trials: &[Trial], full: &BTreeMap<String, u32>) -> Summary {
    let scores: Vec<u32> = trials.iter().map(|t| t.score).collect();
    let n = scores.len();
    let mean = if n == 0 { 0.0 } else { scores.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64 };
    let mut sorted = scores.clone();
    sorted.sort_unstable();
    let median = match n {
        0 => 0.0,
        _ if n % 2 == 1 => f64::from(sorted[n / 2]),
        _ => (f64::from(sorted[n / 2 - 1]) + f64::from(sorted[n / 2])) / 2.0,
    };
    let stdev = if n < 2 {
        0.0
    } else {
        (scores.iter().map(|&s| (f64::from(s) - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    let check_pass_rate = full
        .iter()
        .map(|(id, &max)| {
            let passed = trials.iter().filter(|t| t.checks.get(id).is_some_and(|&p| p >= max)).count();
            (id.clone(), if n == 0 { 0.0 } else { passed as f64 / n as f64 })
        })
        .collect();
    Summary {
        runs: n,
        min: sorted.first().copied().unwrap_or(0),
        max: sorted.last().copied().unwrap_or(0),
        scores,
        mean: round(mean),
        median,
        stdev: round(stdev),
        check_pass_rate,
        calls: trials.iter().map(|t| u64::from(t.calls)).sum(),
        prompt_tokens: trials.iter().map(|t| t.prompt_tokens).sum(),
        completion_tokens: trials.iter().map(|t| t.completion_tokens).sum(),
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// How much better `a` is than `b` on average, with a 95 % bootstrap interval: both samples are
/// resampled with replacement `RESAMPLES` times (a fixed seed, so the same scores always give
/// the same interval) and the middle 95 % of the differences in means kept.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Difference {
    /// mean(a) − mean(b).
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    /// The interval leaves out 0: the difference is bigger than the noise of these runs.
    pub significant: bool,
    pub method: String,
}

const RESAMPLES: usize = 2000;

pub fn difference(a: &[u32], b: &[u32]) -> Difference {
    let mean =
        |xs: &[u32]| if xs.is_empty() { 0.0 } else { xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64 };
    let observed = mean(a) - mean(b);
    if a.is_empty() || b.is_empty() {
        return Difference { mean: round(observed), low: 0.0, high: 0.0, significant: false, method: method() };
    }
    // A small deterministic generator (SplitMix64): the interval is reproducible, and no crate
    // is needed for uniform indices.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |len: usize| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % len as u64) as usize
    };
    let mut diffs: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let sa: f64 = (0..a.len()).map(|_| f64::from(a[next(a.len())])).sum::<f64>() / a.len() as f64;
            let sb: f64 = (0..b.len()).map(|_| f64::from(b[next(b.len())])).sum::<f64>() / b.len() as f64;
            sa - sb
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let low = diffs[RESAMPLES * 25 / 1000];
    let high = diffs[RESAMPLES * 975 / 1000 - 1];
    Difference {
        mean: round(observed),
        low: round(low),
        high: round(high),
        significant: low > 0.0 || high < 0.0,
        method: method(),
    }
}

fn method() -> String {
    format!("bootstrap, {RESAMPLES} resamples, 95 % interval")
}

/// A digest of `config`, to recognize it later (a submission made from a tuned configuration).
pub fn config_hash(config: &crate::moa::Config) -> String {
    let canonical = serde_json::to_string(config).expect("a configuration is plain data");
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(score: u32, checks: &[(&str, u32)]) -> Trial {
        Trial {
            score,
            status: "graded".into(),
            checks: checks.iter().map(|(id, p)| (id.to_string(), *p)).collect(),
            missed: Vec::new(),
            calls: 3,
            prompt_tokens: 10,
            completion_tokens: 5,
            ms: 100,
        }
    }

    #[test]
    fn the_summary_is_exact() {
        let full: BTreeMap<String, u32> = [("a".to_string(), 10), ("b".to_string(), 5)].into();
        let trials = [trial(120, &[("a", 10), ("b", 5)]), trial(65, &[("a", 10), ("b", 0)]), trial(65, &[("a", 3)])];
        let s = summarize(&trials, &full);
        assert_eq!((s.runs, s.min, s.max, s.median, s.mean), (3, 65, 120, 65.0, 83.33));
        assert_eq!(s.stdev, 31.75);
        assert_eq!(s.check_pass_rate["a"], 2.0 / 3.0);
        assert_eq!(s.check_pass_rate["b"], 1.0 / 3.0);
        assert_eq!((s.calls, s.prompt_tokens, s.completion_tokens), (9, 30, 15));
    }

    #[test]
    fn a_real_difference_is_told_from_noise() {
        let better = [120, 120, 115, 120, 110, 120, 120, 118, 120, 120];
        let worse = [65, 70, 65, 98, 65, 65, 70, 65, 98, 65];
        let d = difference(&better, &worse);
        assert!(d.significant && d.low > 20.0, "{d:?}");
        let same = difference(&[65, 120, 65, 120, 65, 120], &[120, 65, 120, 65, 120, 65]);
        assert!(!same.significant && same.mean == 0.0 && same.low < 0.0 && same.high > 0.0, "{same:?}");
        assert_eq!(difference(&better, &worse), d, "the same scores give the same interval");
    }
}
