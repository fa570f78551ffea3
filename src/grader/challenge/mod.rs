//! Challenges are data: a folder (`challenges/<id>/`) with the brief, the starting code, a
//! reference solution, the rules, the validation gate and the checks, each check's points as
//! ordered conditions written in Python expressions (`expr.rs`). Nothing here knows any one
//! challenge: the harness runs the calls a challenge lists and reports what happened, and
//! `scoring.rs` applies the challenge's conditions to that, outside the sandbox.
//!
//! The format is documented in the README ("Writing a challenge") and described for editors
//! by `challenges/challenge.schema.json`; `format.rs` reads it.

mod format;
mod scaffold;

pub use scaffold::scaffold;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::expr::{Expr, Piece};
use super::pyvalue::PyValue;
pub use format::{CALL_NAMES, PROBLEM_NAME, Problem};

/// The challenges built into the binary (every folder of `challenges/`, listed by build.rs).
mod built_in {
    include!(concat!(env!("OUT_DIR"), "/built_in_challenges.rs"));
}

/// A challenge folder's files, by path relative to the folder (`examples/01_x.py`).
#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    /// Where it came from, for messages (`challenges/rate_limiter`, or a path on disk).
    pub origin: String,
    pub files: BTreeMap<String, String>,
}

/// At most this many files and bytes are read from an organizer's folder.
pub const MAX_FILES: usize = 200;
pub const MAX_FOLDER_BYTES: usize = 4 << 20;

impl Folder {
    pub fn built_in() -> Vec<Folder> {
        built_in::FOLDERS
            .iter()
            .map(|(id, files)| Folder {
                id: id.to_string(),
                origin: format!("challenges/{id}"),
                files: files.iter().map(|(path, text)| (path.to_string(), text.to_string())).collect(),
            })
            .collect()
    }

    /// Reads a folder from disk: its top-level files and those of `examples/`, bounded. Blocking.
    pub fn read(dir: &Path) -> Result<Folder, String> {
        let id = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| format!("{}: not a folder", dir.display()))?;
        if !valid_id(&id) {
            return Err(format!(
                "{}: a challenge folder's name is its id: letters, digits, '_' and '-' only (at most 64)",
                dir.display()
            ));
        }
        let mut files = BTreeMap::new();
        let mut bytes = 0;
        for sub in ["", "examples"] {
            let entries = match std::fs::read_dir(dir.join(sub)) {
                Ok(entries) => entries,
                Err(_) if !sub.is_empty() => continue,
                Err(e) => return Err(format!("{}: {e}", dir.display())),
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
                if !meta.is_file() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let relative = if sub.is_empty() { name } else { format!("{sub}/{name}") };
                bytes += meta.len() as usize;
                if files.len() >= MAX_FILES || bytes > MAX_FOLDER_BYTES {
                    return Err(format!(
                        "{}: more than {MAX_FILES} files or {} MiB",
                        dir.display(),
                        MAX_FOLDER_BYTES >> 20
                    ));
                }
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e} (files must be UTF-8 text)", path.display()))?;
                files.insert(relative, text);
            }
        }
        Ok(Folder { id, origin: dir.display().to_string(), files })
    }

    /// What identifies this version of the challenge: a digest of every file, names included.
    fn digest(&self, base: Option<&Folder>) -> String {
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        for folder in base.into_iter().chain([self]) {
            for (path, text) in &folder.files {
                hash.update(&(path.len() as u64).to_le_bytes());
                hash.update(path.as_bytes());
                hash.update(&(text.len() as u64).to_le_bytes());
                hash.update(text.as_bytes());
            }
        }
        hash.finish().as_ref().iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[derive(Debug, Clone, Serialize)]
pub struct Challenge {
    pub id: String,
    pub title: String,
    /// The function (or class) a submission must define.
    pub entry: String,
    /// Digest of the folder's content: scores from different versions are never mixed.
    pub hash: String,
    /// The brief (prompt.md): shown to attendees and sent to their agents.
    pub prompt: String,
    /// The starting code shown to attendees, and what it must earn.
    pub baseline: String,
    pub baseline_total: u32,
    #[serde(skip)]
    pub reference: String,
    #[serde(skip)]
    pub generator: Option<String>,
    pub rules: Rules,
    pub categories: Vec<Category>,
    /// Letter grades, best first: (letter, least percent of the maximum).
    pub grades: Vec<(String, u32)>,
    #[serde(skip)]
    pub validation: Validation,
    pub checks: Vec<Check>,
    pub presets: Vec<Preset>,
    #[serde(skip)]
    pub examples: Vec<Example>,
    /// An expression for a constant answer of the right shape (`do_nothing` in the file), or
    /// none: then the reference's answer to the first validation call, emptied.
    #[serde(skip)]
    pub do_nothing: Option<Expr>,
    /// Every call of a grading, in job order, made ready for the harness once, at load.
    #[serde(skip)]
    pub calls: Vec<GradingCall>,
}

/// One call of a grading, in job order: the validation calls, then each check's inputs.
#[derive(Debug, Clone)]
pub struct GradingCall {
    /// How the harness's record names it: a validation call's id, or `check#i`.
    pub id: String,
    /// The check looks at the arguments as they are after the call.
    pub watch: bool,
    pub input: CallInput,
}

#[derive(Debug, Clone)]
pub enum CallInput {
    /// With the call as the job sends it, serialized once (the inputs can be large).
    Fixed { call: Call, job: String },
    /// Drawn per grading by `generator.py`'s function of that name.
    Generated(String),
}

impl GradingCall {
    /// The calls of a challenge's validation gate and checks, in job order.
    pub fn all(validation: &Validation, checks: &[Check]) -> Vec<GradingCall> {
        let fixed = |id: String, watch, call: &Call| GradingCall {
            input: CallInput::Fixed { call: call.clone(), job: call.job_json(&id, watch) },
            id,
            watch,
        };
        let mut all: Vec<GradingCall> = validation.calls.iter().map(|v| fixed(v.id.clone(), false, &v.call)).collect();
        for check in checks {
            for i in 0..check.inputs.count() {
                let id = format!("{}#{i}", check.id);
                all.push(match &check.inputs {
                    Inputs::Fixed(calls) => fixed(id, check.watch_args, &calls[i]),
                    Inputs::Generated { function, .. } => {
                        GradingCall { input: CallInput::Generated(function.clone()), id, watch: check.watch_args }
                    }
                });
            }
        }
        all
    }
}

/// What the harness checks before running anything; sent to it as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Rules {
    pub module_name: String,
    pub fresh_module_per_phase: bool,
    pub prebound: Vec<String>,
    /// Importable modules, each with the names `from M import` may take.
    pub imports: BTreeMap<String, Vec<String>>,
    pub forbidden_calls: Vec<String>,
    pub forbidden_methods: Vec<String>,
    pub forbidden_attributes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub id: String,
    pub title: String,
    /// The sum of its checks' maxima.
    pub max: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub min_passing: usize,
    pub calls: Vec<ValidationCall>,
}

#[derive(Debug, Clone)]
pub struct ValidationCall {
    pub id: String,
    pub description: String,
    pub call: Call,
    pub passes: Expr,
    pub failure: Vec<Piece>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: String,
    pub title: String,
    pub category: String,
    pub max: u32,
    pub description: String,
    #[serde(skip)]
    pub inputs: Inputs,
    #[serde(skip)]
    pub raised: Option<Award>,
    #[serde(skip)]
    pub unscorable: Award,
    #[serde(skip)]
    pub lets: BTreeMap<String, Expr>,
    #[serde(skip)]
    pub score: Vec<Rule>,
    /// The check looks at its arguments after the call (it mentions `args_after`).
    #[serde(skip)]
    pub watch_args: bool,
}

#[derive(Debug, Clone)]
pub enum Inputs {
    Fixed(Vec<Call>),
    /// `count` calls made per grading by `generator.py`'s `function(rng)`.
    Generated {
        function: String,
        count: usize,
    },
}

impl Inputs {
    pub fn count(&self) -> usize {
        match self {
            Inputs::Fixed(calls) => calls.len(),
            Inputs::Generated { count, .. } => *count,
        }
    }
}

/// One call of a submission: the entry called, then (for a class) methods on what it returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub steps: Vec<Step>,
}

impl Call {
    /// The call as a job names it for the harness: its steps, values tagged (see
    /// `PyValue::to_tagged`).
    pub fn job_json(&self, id: &str, watch: bool) -> String {
        let steps: Vec<serde_json::Value> = self
            .steps
            .iter()
            .map(|s| {
                let kwargs = s.kwargs.iter().map(|(k, v)| (PyValue::Str(k.clone()), v.clone())).collect();
                serde_json::json!([
                    s.name,
                    PyValue::Tuple(s.args.clone()).to_tagged(),
                    PyValue::Dict(kwargs).to_tagged()
                ])
            })
            .collect();
        serde_json::json!({"id": id, "watch": watch, "steps": steps}).to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub args: Vec<PyValue>,
    pub kwargs: Vec<(String, PyValue)>,
}

/// Points and the reason given for them.
#[derive(Debug, Clone)]
pub struct Award {
    pub points: u32,
    pub reason: Vec<Piece>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// None: always holds.
    pub when: Option<Expr>,
    pub award: Award,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    pub system_prompt: String,
}

/// An example submission with the points it must earn (`examples/expected.json`).
#[derive(Debug, Clone)]
pub struct Example {
    pub file: String,
    pub code: String,
    pub total: u32,
    pub checks: BTreeMap<String, u32>,
}

impl Challenge {
    /// The maximum: the sum of every check's.
    pub fn max_points(&self) -> u32 {
        self.checks.iter().map(|c| c.max).sum()
    }

    pub fn letter_grade(&self, total: u32) -> &str {
        let percent = (total as u64 * 100).checked_div(self.max_points() as u64).unwrap_or(0);
        self.grades.iter().find(|(_, least)| percent >= *least as u64).map(|(l, _)| l.as_str()).unwrap_or("F")
    }

    pub fn uses_generated_inputs(&self) -> bool {
        self.checks.iter().any(|c| matches!(c.inputs, Inputs::Generated { .. }))
    }

    /// The allowed imports as a sentence part ("math, json").
    pub fn allowed_imports(&self) -> String {
        self.rules.imports.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// Parses and checks one folder; `siblings` resolves `extends`.
    pub fn compile(folder: &Folder, siblings: &[Folder]) -> Result<Challenge, Vec<Problem>> {
        let base = match format::extends(folder)? {
            None => None,
            Some(id) => match siblings.iter().find(|f| f.id == id) {
                Some(base) => Some(base),
                None => {
                    return Err(vec![Problem::file(
                        folder,
                        "challenge.toml",
                        format!("extends {id:?}, which is not a challenge folder beside it"),
                    )]);
                }
            },
        };
        let mut challenge = format::compile(folder, base)?;
        challenge.hash = folder.digest(base);
        Ok(challenge)
    }
}

/// Every challenge this server offers: the built-in ones, then those of `dir` (an organizer's
/// folder of challenge folders; one with a built-in's id replaces it). Blocking.
pub fn load_all(dir: Option<&Path>) -> Result<Vec<Challenge>, String> {
    let mut folders = Folder::built_in();
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("MOA_CHALLENGES_DIR {}: {e}", dir.display()))?;
        let mut found: Vec<_> =
            entries.flatten().map(|e| e.path()).filter(|p| p.join("challenge.toml").is_file()).collect();
        found.sort();
        if found.len() > 100 {
            return Err(format!("MOA_CHALLENGES_DIR {}: more than 100 challenge folders", dir.display()));
        }
        for path in found {
            let folder = Folder::read(&path)?;
            folders.retain(|f| f.id != folder.id);
            folders.push(folder);
        }
    }
    folders
        .iter()
        .map(|folder| {
            Challenge::compile(folder, &folders).map_err(|problems| {
                let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                format!("challenge {} is not valid:\n{}", folder.origin, lines.join("\n"))
            })
        })
        .collect()
}

/// One folder from disk, compiled (`extends` may name a built-in challenge or a folder beside
/// it). Blocking.
pub fn load_folder(dir: &Path) -> Result<Challenge, String> {
    compile_folder(dir).map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
}

/// As [`load_folder`], keeping each problem apart.
pub fn compile_folder(dir: &Path) -> Result<Challenge, Vec<Problem>> {
    let folder =
        Folder::read(dir).map_err(|message| vec![Problem { file: dir.display().to_string(), line: 0, message }])?;
    let mut siblings = Folder::built_in();
    if let Some(parent) = dir.canonicalize().ok().and_then(|d| d.parent().map(Path::to_path_buf))
        && let Ok(entries) = std::fs::read_dir(parent)
    {
        for path in entries.flatten().map(|e| e.path()).filter(|p| p.join("challenge.toml").is_file()).take(100) {
            if let Ok(sibling) = Folder::read(&path) {
                siblings.retain(|f| f.id != sibling.id);
                siblings.push(sibling);
            }
        }
    }
    Challenge::compile(&folder, &siblings)
}

/// The challenges a server knows, loaded once at start.
#[derive(Debug)]
pub struct Challenges {
    list: Vec<Arc<Challenge>>,
}

impl Challenges {
    /// The built-in challenges and those of `dir` (blocking: reads files).
    pub fn load(dir: Option<&Path>) -> Result<Challenges, String> {
        let mut list: Vec<Arc<Challenge>> = load_all(dir)?.into_iter().map(Arc::new).collect();
        // The default first: pages and `grade` without --challenge take it.
        list.sort_by_key(|c| c.id != DEFAULT_ID);
        Ok(Challenges { list })
    }

    pub fn from_list(list: Vec<Challenge>) -> Challenges {
        Challenges { list: list.into_iter().map(Arc::new).collect() }
    }

    pub fn all(&self) -> &[Arc<Challenge>] {
        &self.list
    }

    /// A challenge by id; `None` is the default one (or the first there is).
    pub fn find(&self, id: Option<&str>) -> Result<&Arc<Challenge>, String> {
        let found = match id {
            None => self.list.iter().find(|c| c.id == DEFAULT_ID).or(self.list.first()),
            Some(id) => self.list.iter().find(|c| c.id == id),
        };
        found.ok_or_else(|| {
            let known: Vec<&str> = self.list.iter().map(|c| c.id.as_str()).collect();
            format!("no challenge named {:?}; known: {}", id.unwrap_or(DEFAULT_ID), known.join(", "))
        })
    }
}

/// The challenge an event offers when none is chosen.
pub const DEFAULT_ID: &str = "calculate_user_metrics";

/// The code to grade from a model's answer: the first fenced block that defines `function`,
/// else the first fenced block, else the `def function(...)` block with its indented body.
/// Empty when the answer holds no code at all.
pub fn extract_code(answer: &str, function: &str) -> String {
    let blocks = fenced_blocks(answer);
    let defines = |code: &&String| code.lines().any(|l| l.trim_start().starts_with(&format!("def {function}(")));
    if let Some(block) = blocks.iter().find(defines).or(blocks.first()) {
        return block.trim_matches('\n').to_string();
    }
    let lines: Vec<&str> = answer.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with(&format!("def {function}("))) else {
        return String::new();
    };
    let body = lines[start + 1..].iter().take_while(|l| l.trim().is_empty() || l.starts_with([' ', '\t'])).count();
    lines[start..=start + body].join("\n").trim_end().to_string()
}

/// Contents of ``` fenced blocks, in order (an unclosed last block runs to the end).
fn fenced_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) => current = Some(Vec::new()),
            (Some(lines), true) => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), false) => lines.push(line),
            (None, false) => {}
        }
    }
    if let Some(lines) = current {
        blocks.push(lines.join("\n"));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_extracted_like_the_workshop_did() {
        let f = "calculate_user_metrics";
        let fenced =
            "Here you go:\n```python\nimport math\ndef calculate_user_metrics(u, s, e):\n    return {}\n```\nDone.";
        assert_eq!(extract_code(fenced, f), "import math\ndef calculate_user_metrics(u, s, e):\n    return {}");
        let two = "```json\n{}\n```\n```\ndef calculate_user_metrics(u, s, e):\n    pass\n```";
        assert_eq!(extract_code(two, f), "def calculate_user_metrics(u, s, e):\n    pass");
        assert_eq!(extract_code("```\nprint(1)\n```", f), "print(1)");
        let bare = "Sure.\ndef calculate_user_metrics(u, s, e):\n    x = 1\n\n    return x\nThat is all.";
        assert_eq!(extract_code(bare, f), "def calculate_user_metrics(u, s, e):\n    x = 1\n\n    return x");
        assert_eq!(extract_code("no code here", f), "");
        assert_eq!(
            extract_code("```python\ndef calculate_user_metrics(a, b, c):\n    return 1", f),
            "def calculate_user_metrics(a, b, c):\n    return 1"
        );
    }

    #[test]
    fn grade_bands_match_the_rubric() {
        let c = load_all(None).unwrap().into_iter().find(|c| c.id == DEFAULT_ID).unwrap();
        assert_eq!(c.max_points(), 120);
        assert_eq!(c.letter_grade(120), "A");
        assert_eq!(c.letter_grade(108), "A");
        assert_eq!(c.letter_grade(107), "B");
        assert_eq!(c.letter_grade(96), "B");
        assert_eq!(c.letter_grade(84), "C");
        assert_eq!(c.letter_grade(72), "D");
        assert_eq!(c.letter_grade(71), "F");
        assert_eq!(c.letter_grade(0), "F");
    }
}
