//! Reading `challenge.toml` (and the folder's other files) into a [`Challenge`], with every
//! problem reported as `file:line: problem`.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::{Award, Call, Category, Challenge, Check, Example, Folder, Inputs, Preset, Rule, Rules, Step};
use super::{GradingCall, Validation, ValidationCall, valid_id};
use crate::grader::expr::{self, Evaluator, Expr, Piece};

const MANIFEST: &str = "challenge.toml";

/// One thing wrong with a challenge folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 when the problem is not on a line (a missing file).
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl Problem {
    pub fn file(folder: &Folder, file: &str, message: String) -> Problem {
        Problem { file: format!("{}/{file}", folder.origin), line: 0, message }
    }
}

// --- the file, as written --------------------------------------------------------------

type Text = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    extends: Option<String>,
    title: Option<String>,
    entry: Option<String>,
    baseline_total: Option<u32>,
    do_nothing: Option<Text>,
    rules: Option<RulesFile>,
    #[serde(default)]
    categories: Vec<CategoryFile>,
    grades: Option<BTreeMap<String, u32>>,
    validation: Option<ValidationFile>,
    #[serde(default)]
    checks: Vec<Spanned<CheckFile>>,
    #[serde(default)]
    presets: Vec<Preset>,
    /// `validation` and `do_nothing` once compiled (a variant may take them from its base).
    #[serde(skip)]
    validation_compiled: Option<Validation>,
    #[serde(skip)]
    do_nothing_compiled: Option<Expr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default = "main_module")]
    module_name: String,
    #[serde(default = "yes")]
    fresh_module_per_phase: bool,
    #[serde(default)]
    prebound: Vec<String>,
    #[serde(default)]
    imports: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    forbidden_calls: Vec<String>,
    #[serde(default)]
    forbidden_methods: Vec<String>,
    #[serde(default)]
    forbidden_attributes: Vec<String>,
}

fn main_module() -> String {
    "__main__".into()
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct CategoryFile {
    id: String,
    title: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidationFile {
    min_passing: usize,
    passes: Option<Text>,
    failure: Option<Text>,
    calls: Vec<Spanned<ValidationCallFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidationCallFile {
    id: String,
    description: String,
    call: Option<Text>,
    steps: Option<Vec<Text>>,
    passes: Option<Text>,
    failure: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    id: String,
    title: String,
    category: String,
    max: u32,
    #[serde(default)]
    description: String,
    call: Option<Text>,
    calls: Option<Vec<Spanned<CallFile>>>,
    steps: Option<Vec<Text>>,
    generate: Option<Text>,
    count: Option<usize>,
    raised: Option<AwardFile>,
    unscorable: Option<AwardFile>,
    #[serde(rename = "let", default)]
    lets: BTreeMap<String, Text>,
    #[serde(default)]
    score: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CallFile {
    One(String),
    Steps(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AwardFile {
    points: u32,
    reason: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    when: Option<Text>,
    points: Spanned<u32>,
    reason: Text,
}

/// The names a check's expressions may use besides its `let`s and the built-in functions.
pub const CALL_NAMES: &[&str] =
    &["result", "results", "error", "args", "args_after", "expected", "expected_results", "expected_error"];
const CHECK_NAMES: &[&str] = &["calls"];
/// The name an `unscorable` reason gives the exception a condition raised.
pub const PROBLEM_NAME: &str = "problem";

// --- reading ---------------------------------------------------------------------------

/// Where problems are reported: the manifest's text, to turn byte offsets into lines.
struct Source<'a> {
    folder: &'a Folder,
    text: &'a str,
    problems: Vec<Problem>,
}

impl Source<'_> {
    fn line_of(&self, at: usize) -> usize {
        self.text[..at.min(self.text.len())].matches('\n').count() + 1
    }

    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        let line = self.line_of(span.start);
        self.problems.push(Problem {
            file: format!("{}/{MANIFEST}", self.folder.origin),
            line,
            message: message.into(),
        });
    }

    /// A parse error inside a string value, at its own line.
    fn syntax(&mut self, text: &Text, what: &str, error: expr::SyntaxError) {
        let inside = text.get_ref()[..error.at.min(text.get_ref().len())].matches('\n').count();
        let opening =
            self.text.get(text.span()).is_some_and(|raw| raw.starts_with("\"\"\"\n") || raw.starts_with("'''\n"));
        let line = self.line_of(text.span().start) + inside + opening as usize;
        self.problems.push(Problem {
            file: format!("{}/{MANIFEST}", self.folder.origin),
            line,
            message: format!("{what}: {}", error),
        });
    }

    fn expr(&mut self, text: &Text, what: &str) -> Option<Expr> {
        match expr::parse(text.get_ref()) {
            Ok(e) => Some(e),
            Err(error) => {
                self.syntax(text, what, error);
                None
            }
        }
    }

    fn template(&mut self, text: &Text, what: &str) -> Option<Vec<Piece>> {
        match expr::parse_template(text.get_ref()) {
            Ok(t) => Some(t),
            Err(error) => {
                self.syntax(text, what, error);
                None
            }
        }
    }

    /// Problems for names an expression uses that nothing defines (a typo would otherwise
    /// only show as a check that never awards its points).
    fn names(&mut self, span: Range<usize>, exprs: &[&Expr], known: &[&str]) {
        for expr in exprs {
            for name in expr.free_names() {
                if !known.contains(&name.as_str()) && !expr::is_builtin(&name) {
                    self.problem(span.clone(), format!("unknown name '{name}'"));
                }
            }
        }
    }
}

fn parse_manifest(folder: &Folder) -> Result<(Manifest, &str), Vec<Problem>> {
    let Some(text) = folder.files.get(MANIFEST) else {
        return Err(vec![Problem::file(folder, MANIFEST, "missing: every challenge folder has one".into())]);
    };
    toml::from_str::<Manifest>(text).map(|m| (m, text.as_str())).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0);
        vec![Problem {
            file: format!("{}/{MANIFEST}", folder.origin),
            line,
            message: e.message().trim().replace('\n', " "),
        }]
    })
}

/// The id of the challenge this one extends, if any.
pub fn extends(folder: &Folder) -> Result<Option<String>, Vec<Problem>> {
    Ok(parse_manifest(folder)?.0.extends)
}

/// A folder's own parts, before a variant is merged onto its base.
struct Parts {
    manifest: Manifest,
    checks: Vec<Check>,
    categories: Vec<CategoryFile>,
}

pub fn compile(folder: &Folder, base: Option<&Folder>) -> Result<Challenge, Vec<Problem>> {
    let mut problems = Vec::new();
    let base_parts = match base {
        Some(base) => {
            if extends(base)?.is_some() {
                return Err(vec![Problem::file(
                    folder,
                    MANIFEST,
                    format!("extends {}, which extends another: only one level", base.id),
                )]);
            }
            Some(parts(base, None, &mut problems))
        }
        None => None,
    };
    let entry_hint = base_parts.as_ref().and_then(|p| p.as_ref()).and_then(|p| p.manifest.entry.clone());
    let own = parts(folder, entry_hint.as_deref(), &mut problems);
    let Some(own) = own else { return Err(problems) };
    let base_parts = base_parts.flatten();
    // A variant overrides what it gives and appends its categories and checks to the base's.
    let (mut manifest, mut checks, mut categories) = (own.manifest, own.checks, own.categories);
    if let Some(b) = base_parts {
        let mut m = b.manifest;
        m.title = manifest.title.or(m.title);
        m.entry = manifest.entry.or(m.entry);
        m.baseline_total = manifest.baseline_total.or(m.baseline_total);
        m.do_nothing_compiled = manifest.do_nothing_compiled.or(m.do_nothing_compiled);
        m.rules = manifest.rules.or(m.rules);
        m.grades = manifest.grades.or(m.grades);
        m.validation_compiled = manifest.validation_compiled.or(m.validation_compiled);
        if !manifest.presets.is_empty() {
            m.presets = std::mem::take(&mut manifest.presets);
        }
        manifest = m;
        checks = [b.checks, checks].concat();
        categories = [b.categories, categories].concat();
    }
    let file = |name: &str| folder.files.get(name).or_else(|| base.and_then(|b| b.files.get(name))).cloned();
    let need = |name: &str, problems: &mut Vec<Problem>| {
        file(name).unwrap_or_else(|| {
            problems.push(Problem::file(folder, name, "missing".into()));
            String::new()
        })
    };
    let prompt = need("prompt.md", &mut problems);
    let baseline = need("baseline.py", &mut problems);
    let reference = need("reference.py", &mut problems);
    let generator = file("generator.py");
    let manifest_problem =
        |message: String| Problem { file: format!("{}/{MANIFEST}", folder.origin), line: 0, message };

    let (Some(title), Some(entry), Some(rules), Some(validation)) =
        (manifest.title.clone(), manifest.entry.clone(), manifest.rules.take(), manifest.validation_compiled.take())
    else {
        for (missing, what) in [
            (manifest.title.is_none(), "title"),
            (manifest.entry.is_none(), "entry"),
            (manifest.rules.is_none(), "[rules]"),
            (manifest.validation_compiled.is_none(), "[validation]"),
        ] {
            if missing {
                problems.push(manifest_problem(format!("{what} is missing")));
            }
        }
        return Err(problems);
    };
    if !is_identifier(&entry) {
        problems.push(manifest_problem(format!("entry {entry:?} is not a Python name")));
    }

    let mut seen = Vec::new();
    for check in &checks {
        if seen.contains(&check.id) {
            problems.push(manifest_problem(format!("two checks are named {}", check.id)));
        }
        seen.push(check.id.clone());
        if let Inputs::Generated { function, .. } = &check.inputs {
            let defined =
                generator.as_deref().is_some_and(|g| g.lines().any(|l| l.starts_with(&format!("def {function}("))));
            if !defined {
                problems.push(manifest_problem(format!("check {}: generator.py defines no {function}(rng)", check.id)));
            }
        }
    }
    if checks.is_empty() {
        problems.push(manifest_problem("there are no [[checks]]".into()));
    }
    let mut category_list = Vec::new();
    let checks_compiled = problems.is_empty();
    for c in &categories {
        let max: u32 = checks.iter().filter(|k| k.category == c.id).map(|k| k.max).sum();
        if max == 0 && checks_compiled {
            problems.push(manifest_problem(format!("category {} has no check", c.id)));
        }
        category_list.push(Category { id: c.id.clone(), title: c.title.clone(), max });
    }
    for check in &checks {
        if !categories.iter().any(|c| c.id == check.category) {
            problems.push(manifest_problem(format!("check {}: unknown category {:?}", check.id, check.category)));
        }
    }
    let mut grades: Vec<(String, u32)> = manifest
        .grades
        .clone()
        .unwrap_or_else(|| [("A", 90), ("B", 80), ("C", 70), ("D", 60)].map(|(l, p)| (l.to_string(), p)).into())
        .into_iter()
        .collect();
    grades.sort_by_key(|g| std::cmp::Reverse(g.1));
    if grades.iter().any(|(_, p)| *p > 100) {
        problems.push(manifest_problem("[grades]: a percentage above 100".into()));
    }
    for preset in &manifest.presets {
        if !preset.system_prompt.contains("{helper_response}") {
            problems.push(manifest_problem(format!(
                "preset {:?}: the system prompt must contain {{helper_response}}",
                preset.name
            )));
        }
    }
    let examples = examples(folder, &mut problems);
    let do_nothing = manifest.do_nothing_compiled.take();

    if !problems.is_empty() {
        return Err(problems);
    }
    let rules = Rules {
        module_name: rules.module_name,
        fresh_module_per_phase: rules.fresh_module_per_phase,
        prebound: rules.prebound,
        imports: rules.imports,
        forbidden_calls: rules.forbidden_calls,
        forbidden_methods: rules.forbidden_methods,
        forbidden_attributes: rules.forbidden_attributes,
    };
    let calls = GradingCall::all(&validation, &checks);
    Ok(Challenge {
        id: folder.id.clone(),
        title,
        entry,
        hash: String::new(),
        prompt,
        baseline,
        baseline_total: manifest.baseline_total.unwrap_or(0),
        reference,
        generator,
        rules,
        categories: category_list,
        grades,
        validation,
        checks,
        presets: manifest.presets,
        examples,
        do_nothing,
        calls,
    })
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Compiles one folder's manifest: its checks and validation; None when it does not parse.
fn parts(folder: &Folder, entry_hint: Option<&str>, problems: &mut Vec<Problem>) -> Option<Parts> {
    let (mut manifest, text) = match parse_manifest(folder) {
        Ok(parsed) => parsed,
        Err(mut found) => {
            problems.append(&mut found);
            return None;
        }
    };
    let mut source = Source { folder, text, problems: Vec::new() };
    let entry = manifest.entry.clone().or(entry_hint.map(str::to_string)).unwrap_or_default();
    if let Some(rules) = &manifest.rules {
        for module in rules.prebound.iter().chain(rules.imports.keys()) {
            if !module.split('.').all(is_identifier) {
                source.problem(0..0, format!("[rules]: {module:?} is not a module name"));
            }
        }
    }
    if let Some(v) = manifest.validation.take() {
        manifest.validation_compiled = validation(&mut source, &entry, v);
    }
    if let Some(text) = manifest.do_nothing.clone() {
        manifest.do_nothing_compiled = source.expr(&text, "do_nothing");
    }
    let checks =
        std::mem::take(&mut manifest.checks).into_iter().filter_map(|c| check(&mut source, &entry, c)).collect();
    let categories = std::mem::take(&mut manifest.categories);
    for c in &categories {
        if !valid_id(&c.id) {
            source.problem(0..0, format!("category id {:?}: letters, digits, '_' and '-' only", c.id));
        }
    }
    problems.append(&mut source.problems);
    Some(Parts { manifest, checks, categories })
}

fn validation(source: &mut Source, entry: &str, file: ValidationFile) -> Option<Validation> {
    let default_passes = match &file.passes {
        Some(t) => source.expr(t, "validation passes"),
        None => Some(Expr::Const(crate::grader::pyvalue::PyValue::Bool(true))),
    };
    let default_failure = match &file.failure {
        Some(t) => source.template(t, "validation failure"),
        None => Some(vec![Piece::Text("the call's result does not pass the validation".into())]),
    };
    if file.calls.is_empty() {
        source.problem(0..0, "[validation] needs at least one call");
    }
    if file.min_passing > file.calls.len() {
        source.problem(
            0..0,
            format!("[validation]: min_passing {} is more than its {} calls", file.min_passing, file.calls.len()),
        );
    }
    let mut calls = Vec::new();
    for spanned in file.calls {
        let span = spanned.span();
        let v = spanned.into_inner();
        let call = match (&v.call, &v.steps) {
            (Some(call), None) => parse_call(source, call, entry),
            (None, Some(steps)) => parse_steps(source, steps, entry),
            _ => {
                source.problem(span.clone(), format!("validation call {}: give exactly one of call and steps", v.id));
                None
            }
        };
        let passes = match &v.passes {
            Some(t) => source.expr(t, "passes"),
            None => default_passes.clone(),
        };
        let failure = match &v.failure {
            Some(t) => source.template(t, "failure"),
            None => default_failure.clone(),
        };
        if let (Some(p), Some(f)) = (&passes, &failure) {
            let exprs: Vec<&Expr> = std::iter::once(p).chain(template_exprs(f)).collect();
            source.names(span.clone(), &exprs, CALL_NAMES);
        }
        if let (Some(call), Some(passes), Some(failure)) = (call, passes, failure) {
            calls.push(ValidationCall { id: v.id, description: v.description, call, passes, failure });
        }
    }
    Some(Validation { min_passing: file.min_passing, calls })
}

fn template_exprs(template: &[Piece]) -> impl Iterator<Item = &Expr> {
    template.iter().filter_map(|p| match p {
        Piece::Expr(e) => Some(e),
        Piece::Text(_) => None,
    })
}

fn check(source: &mut Source, entry: &str, spanned: Spanned<CheckFile>) -> Option<Check> {
    let span = spanned.span();
    let file = spanned.into_inner();
    let before = source.problems.len();
    let at = |what: &str| format!("check {}: {what}", file.id);
    if !valid_id(&file.id) {
        source.problem(span.clone(), format!("check id {:?}: letters, digits, '_' and '-' only", file.id));
    }
    if file.max == 0 {
        source.problem(span.clone(), at("max must be at least 1"));
    }
    let given = [file.call.is_some(), file.calls.is_some(), file.steps.is_some(), file.generate.is_some()];
    let inputs = match given.iter().filter(|g| **g).count() {
        1 => {
            if let Some(call) = &file.call {
                parse_call(source, call, entry).map(|c| Inputs::Fixed(vec![c]))
            } else if let Some(steps) = &file.steps {
                parse_steps(source, steps, entry).map(|c| Inputs::Fixed(vec![c]))
            } else if let Some(calls) = file.calls {
                let mut parsed = Vec::new();
                for call in calls {
                    let span = call.span();
                    let parsed_call = match call.into_inner() {
                        CallFile::One(text) => parse_call(source, &Spanned::new(span, text), entry),
                        CallFile::Steps(steps) => {
                            let steps: Vec<Text> = steps.into_iter().map(|s| Spanned::new(span.clone(), s)).collect();
                            parse_steps(source, &steps, entry)
                        }
                    };
                    parsed.extend(parsed_call);
                }
                if parsed.is_empty() {
                    source.problem(span.clone(), at("calls is empty"));
                }
                Some(Inputs::Fixed(parsed))
            } else {
                let function = file.generate.as_ref().expect("counted above");
                if !is_identifier(function.get_ref()) {
                    source.problem(function.span(), at("generate names a function of generator.py"));
                }
                let count = file.count.unwrap_or(1);
                if !(1..=50).contains(&count) {
                    source.problem(span.clone(), at("count is 1 to 50"));
                }
                Some(Inputs::Generated { function: function.get_ref().clone(), count })
            }
        }
        _ => {
            source.problem(span.clone(), at("give exactly one of call, calls, steps and generate"));
            None
        }
    };
    if file.count.is_some() && file.generate.is_none() {
        source.problem(span.clone(), at("count goes with generate"));
    }

    let award = |source: &mut Source, a: &AwardFile, what: &str, default: &str| -> Option<Award> {
        if a.points > file.max {
            source.problem(
                span.clone(),
                at(&format!("{what} gives {} points, more than its max {}", a.points, file.max)),
            );
        }
        let reason = match &a.reason {
            Some(t) => source.template(t, what)?,
            None => expr::parse_template(default).expect("built-in template"),
        };
        Some(Award { points: a.points, reason })
    };
    let raised = file.raised.as_ref().and_then(|a| award(source, a, "raised", "raised {error}"));
    let unscorable_file = file.unscorable.unwrap_or(AwardFile { points: 0, reason: None });
    let unscorable = award(source, &unscorable_file, "unscorable", "checking the result raised {problem}");
    let mut lets = BTreeMap::new();
    for (name, text) in &file.lets {
        if !is_identifier(name) || CALL_NAMES.contains(&name.as_str()) || expr::is_builtin(name) {
            source.problem(text.span(), at(&format!("let {name:?} is not a free name")));
        }
        if let Some(e) = source.expr(text, &at(&format!("let {name}"))) {
            lets.insert(name.clone(), e);
        }
    }
    let mut score = Vec::new();
    for (i, rule) in file.score.iter().enumerate() {
        let points = *rule.points.get_ref();
        if points > file.max {
            source.problem(
                rule.points.span(),
                at(&format!("a rule gives {points} points, more than its max {}", file.max)),
            );
        }
        if rule.when.is_none() && i + 1 < file.score.len() {
            source
                .problem(rule.reason.span(), at("a rule without `when` always holds: the rules after it never apply"));
        }
        let when = match &rule.when {
            Some(t) => source.expr(t, &at("when")).map(Some),
            None => Some(None),
        };
        if let (Some(when), Some(reason)) = (when, source.template(&rule.reason, &at("reason"))) {
            score.push(Rule { when, award: Award { points, reason } });
        }
    }
    if file.score.is_empty() {
        source.problem(span.clone(), at("no [[checks.score]] rule"));
    } else if file.score.last().is_some_and(|r| r.when.is_some()) {
        source.problem(span.clone(), at("the last rule needs no `when` (it says what everything else earns)"));
    }
    let mut known: Vec<&str> = CALL_NAMES.iter().chain(CHECK_NAMES).copied().collect();
    known.extend(lets.keys().map(String::as_str));
    // Each expression with the span of the text it came from, for `file:line` of a bad name.
    let mut spanned: Vec<(Range<usize>, &Expr)> = Vec::new();
    for (name, e) in &lets {
        spanned.push((file.lets[name].span(), e));
    }
    for (rule, file_rule) in score.iter().zip(&file.score) {
        if let (Some(w), Some(t)) = (&rule.when, &file_rule.when) {
            spanned.push((t.span(), w));
        }
        spanned.extend(template_exprs(&rule.award.reason).map(|e| (file_rule.reason.span(), e)));
    }
    for award in raised.iter() {
        spanned.extend(template_exprs(&award.reason).map(|e| (span.clone(), e)));
    }
    let watch_args = spanned.iter().any(|(_, e)| e.free_names().iter().any(|n| n == "args_after"));
    for (at, e) in &spanned {
        source.names(at.clone(), &[e], &known);
    }
    if let Some(u) = &unscorable {
        let mut with_problem = known.clone();
        with_problem.push(PROBLEM_NAME);
        source.names(span.clone(), &template_exprs(&u.reason).collect::<Vec<_>>(), &with_problem);
    }
    if source.problems.len() > before {
        return None;
    }
    Some(Check {
        id: file.id,
        title: file.title,
        category: file.category,
        max: file.max,
        description: file.description,
        inputs: inputs?,
        raised,
        unscorable: unscorable?,
        lets,
        score,
        watch_args,
    })
}

/// `entry(args...)`: the arguments evaluated now, once.
fn parse_call(source: &mut Source, text: &Text, entry: &str) -> Option<Call> {
    let step = parse_step(source, text, Some(entry))?;
    Some(Call { steps: vec![step] })
}

/// A class's call: `Entry(args)`, then `method(args)` on what it returned.
fn parse_steps(source: &mut Source, texts: &[Text], entry: &str) -> Option<Call> {
    if texts.is_empty() {
        source.problem(0..0, "steps is empty");
        return None;
    }
    let mut steps = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        steps.push(parse_step(source, text, if i == 0 { Some(entry) } else { None })?);
    }
    Some(Call { steps })
}

fn parse_step(source: &mut Source, text: &Text, entry: Option<&str>) -> Option<Step> {
    let parsed = source.expr(text, "call")?;
    let Expr::Call { func, args, kwargs } = parsed else {
        source.problem(text.span(), format!("{:?} is not a call such as name(arguments)", text.get_ref()));
        return None;
    };
    let Expr::Name(name) = *func else {
        source.problem(text.span(), "a call names the function (or method) it calls");
        return None;
    };
    if let Some(entry) = entry
        && name != entry
    {
        source.problem(text.span(), format!("the first call must be of {entry}(...), not {name}(...)"));
        return None;
    }
    let evaluator = Evaluator::new(&());
    let mut values = Vec::new();
    for arg in &args {
        match evaluator.eval(arg) {
            Ok(v) => values.push(v),
            Err(e) => {
                source.problem(text.span(), format!("an argument of {name}(...) cannot be computed: {}", e.0));
                return None;
            }
        }
    }
    let mut named = Vec::new();
    for (key, arg) in &kwargs {
        match evaluator.eval(arg) {
            Ok(v) => named.push((key.clone(), v)),
            Err(e) => {
                source.problem(text.span(), format!("argument {key} of {name}(...) cannot be computed: {}", e.0));
                return None;
            }
        }
    }
    Some(Step { name, args: values, kwargs: named })
}

fn examples(folder: &Folder, problems: &mut Vec<Problem>) -> Vec<Example> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Expected {
        total: u32,
        #[serde(default)]
        checks: BTreeMap<String, u32>,
    }
    let files = || folder.files.keys().filter_map(|f| f.strip_prefix("examples/")).filter(|f| f.ends_with(".py"));
    let Some(text) = folder.files.get("examples/expected.json") else {
        if let Some(file) = files().next() {
            problems.push(Problem::file(
                folder,
                &format!("examples/{file}"),
                "examples/expected.json is missing: it gives each example's points".into(),
            ));
        }
        return Vec::new();
    };
    let expected: BTreeMap<String, Expected> = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem {
                file: format!("{}/examples/expected.json", folder.origin),
                line: e.line(),
                message: e.to_string(),
            });
            return Vec::new();
        }
    };
    // An example nobody says the points of would be skipped without a word.
    for file in files().filter(|f| !expected.contains_key(*f)) {
        problems.push(Problem::file(
            folder,
            "examples/expected.json",
            format!("has no entry for examples/{file}: give its total and every check's points"),
        ));
    }
    let mut out = Vec::new();
    for (file, want) in expected {
        match folder.files.get(&format!("examples/{file}")) {
            Some(code) => out.push(Example { file, code: code.clone(), total: want.total, checks: want.checks }),
            None => problems.push(Problem::file(
                folder,
                "examples/expected.json",
                format!("lists {file}, which is not in examples/"),
            )),
        }
    }
    out
}
