//! `moa-workshop challenge new NAME`: a small, valid challenge folder to start from.

use std::path::{Path, PathBuf};

const MANIFEST: &str = r#"#:schema ../challenge.schema.json
# A new challenge: edit each part, then run `moa-workshop challenge check <this folder>`.
# The format is described in the README, "Writing a challenge".

title = "Count the vowels"
entry = "count_vowels"
baseline_total = 55

[rules]
module_name = "__main__"
fresh_module_per_phase = true
prebound = []
forbidden_calls = ["exec", "eval", "compile", "__import__", "open", "input"]
forbidden_attributes = ["__globals__", "__builtins__"]

[rules.imports]
string = ["ascii_letters", "ascii_lowercase"]

[[categories]]
id = "correctness"
title = "Correctness"

[[categories]]
id = "robustness"
title = "Robustness"

[validation]
min_passing = 1
passes = "isinstance(result, int)"
failure = "returned {short(result)}, not an int"

[[validation.calls]]
id = "V1"
description = "a short word"
call = "count_vowels('abc')"

[[checks]]
id = "counts_vowels"
title = "Counts vowels"
category = "correctness"
max = 45
description = "'hello world' has 3 vowels."
call = "count_vowels('hello world')"
raised = { points = 0, reason = "raised {error}" }
[[checks.score]]
when = "result == 3"
points = 45
reason = "3 vowels in 'hello world'"
[[checks.score]]
points = 0
reason = "counted {short(result)} vowels in 'hello world', not 3"

[[checks]]
id = "ignores_case"
title = "Upper case counts"
category = "correctness"
max = 35
description = "Capital vowels count too; the expected value is what reference.py returns."
call = "count_vowels('AEIOU xyz')"
raised = { points = 0, reason = "raised {error}" }
[[checks.score]]
when = "result == expected"
points = 35
reason = "capital vowels counted"
[[checks.score]]
points = 0
reason = "counted {short(result)}, expected {expected}"

[[checks]]
id = "handles_empty"
title = "Empty text"
category = "robustness"
max = 10
call = "count_vowels('')"
raised = { points = 0, reason = "raised {error} on ''" }
[[checks.score]]
when = "result == 0"
points = 10
reason = "an empty text has no vowel"
[[checks.score]]
points = 0
reason = "returned {short(result)} for ''"

[[checks]]
id = "handles_none"
title = "Not a text"
category = "robustness"
max = 10
description = "None is not a text: the answer is 0, not an exception."
call = "count_vowels(None)"
raised = { points = 0, reason = "raised {error} for None" }
[[checks.score]]
when = "result == 0"
points = 10
reason = "None gives 0"
[[checks.score]]
points = 5
reason = "did not crash on None, but returned {short(result)}"

[[presets]]
name = "Careful"
system_prompt = "Your reviewers said:\n{helper_response}\n\nWrite the final function. Return only the code, in one ```python block."
"#;

const PROMPT: &str = "Write a Python function `count_vowels(text)` that returns how many vowels (a, e, i, o, u, \
in either case) `text` holds. If `text` is not a str, return 0.\n\nOnly the module `string` may be imported. \
Return only the code, in one ```python block.\n";

const BASELINE: &str = "def count_vowels(text):\n    return sum(1 for c in text if c in \"aeiou\")\n";

const REFERENCE: &str = "def count_vowels(text):\n    if not isinstance(text, str):\n        return 0\n    \
return sum(1 for c in text.lower() if c in \"aeiou\")\n";

/// Writes `dir/name/` and returns its path; refuses to touch an existing folder.
pub fn scaffold(dir: &Path, name: &str) -> Result<PathBuf, String> {
    if !super::valid_id(name) {
        return Err(format!("{name:?} cannot be a challenge id: letters, digits, '_' and '-' only (at most 64)"));
    }
    let folder = dir.join(name);
    if folder.exists() {
        return Err(format!("{} exists already", folder.display()));
    }
    std::fs::create_dir_all(&folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    for (file, text) in
        [("challenge.toml", MANIFEST), ("prompt.md", PROMPT), ("baseline.py", BASELINE), ("reference.py", REFERENCE)]
    {
        std::fs::write(folder.join(file), text).map_err(|e| format!("cannot write {file}: {e}"))?;
    }
    Ok(folder)
}
