//! Python values as the harness reports them, with just enough Python semantics
//! (`==`, `.get`, `len`, indexing, truthiness, `set`) to score them outside the sandbox.
//!
//! Every operation that would raise in Python returns `Err(PyError)`, so the scorer can
//! apply the rubric's "raises → n points" branches exactly. Values that are not plain data
//! are `Opaque`: they equal nothing and every operation on them raises.

use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    /// An int that fits in i128; larger ones keep their decimal digits.
    Int(i128),
    BigInt(String),
    Float(f64),
    Str(String),
    /// A str holding surrogate code points ('\ud800'), which a Rust string cannot: its code
    /// points. Never holds a str without one (that is `Str`), so the two never compare equal.
    Surrogates(Vec<u32>),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    /// Key/value pairs in insertion order, as Python keeps them.
    Dict(Vec<(PyValue, PyValue)>),
    Opaque(String),
}

/// A Python exception, described the way Python would name it.
#[derive(Debug, Clone, PartialEq)]
pub struct PyError(pub String);

pub type PyResult<T> = Result<T, PyError>;

fn raise<T>(text: impl Into<String>) -> PyResult<T> {
    Err(PyError(text.into()))
}

impl PyValue {
    /// Decodes the harness's tagged encoding; anything malformed is an error.
    pub fn from_tagged(json: &Json) -> Result<PyValue, String> {
        let items = json.as_array().ok_or("a value is not a tagged array")?;
        let tag = items.first().and_then(Json::as_str).ok_or("a value has no tag")?;
        let payload = items.get(1);
        let text = || payload.and_then(Json::as_str).ok_or(format!("tag {tag} needs a string"));
        let list = || {
            payload
                .and_then(Json::as_array)
                .ok_or(format!("tag {tag} needs a list"))?
                .iter()
                .map(PyValue::from_tagged)
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match tag {
            "n" => PyValue::None,
            "b" => PyValue::Bool(payload.and_then(Json::as_bool).ok_or("tag b needs a bool")?),
            "i" => {
                let digits = text()?;
                match digits.parse::<i128>() {
                    Ok(n) => PyValue::Int(n),
                    Err(_) if is_integer_literal(digits) => PyValue::BigInt(digits.to_string()),
                    Err(_) => return Err(format!("bad int {digits:?}")),
                }
            }
            "f" => PyValue::Float(parse_python_float(text()?)?),
            "s" => PyValue::Str(text()?.to_string()),
            "z" => {
                let points = payload
                    .and_then(Json::as_array)
                    .ok_or("tag z needs code points")?
                    .iter()
                    .map(|p| p.as_u64().filter(|&p| p <= 0x10FFFF).map(|p| p as u32))
                    .collect::<Option<Vec<u32>>>()
                    .ok_or("tag z needs code points")?;
                PyValue::from_code_points(points)
            }
            "l" => PyValue::List(list()?),
            "t" => PyValue::Tuple(list()?),
            "d" => {
                let pairs = payload.and_then(Json::as_array).ok_or("tag d needs pairs")?;
                let mut out = Vec::with_capacity(pairs.len());
                for pair in pairs {
                    match pair.as_array().map(Vec::as_slice) {
                        Some([k, v]) => out.push((PyValue::from_tagged(k)?, PyValue::from_tagged(v)?)),
                        _ => return Err("a dict entry is not a pair".into()),
                    }
                }
                PyValue::Dict(out)
            }
            "o" => PyValue::Opaque(super::report::caps::cut(text()?, super::report::caps::NAME_CHARS)),
            other => return Err(format!("unknown tag {other:?}")),
        })
    }

    /// A Python str from its code points: `Str` unless it holds a surrogate.
    /// The tagged encoding the harness decodes (`untag`): how inputs reach the sandbox.
    pub fn to_tagged(&self) -> Json {
        use serde_json::json;
        match self {
            PyValue::None => json!(["n"]),
            PyValue::Bool(b) => json!(["b", b]),
            PyValue::Int(n) => json!(["i", n.to_string()]),
            PyValue::BigInt(digits) => json!(["i", digits]),
            PyValue::Float(f) if f.is_nan() => json!(["f", "nan"]),
            PyValue::Float(f) if f.is_infinite() => json!(["f", if *f > 0.0 { "inf" } else { "-inf" }]),
            PyValue::Float(f) => json!(["f", format!("{f:?}")]),
            PyValue::Str(s) => json!(["s", s]),
            PyValue::Surrogates(points) => json!(["z", points]),
            PyValue::List(items) => json!(["l", items.iter().map(PyValue::to_tagged).collect::<Vec<_>>()]),
            PyValue::Tuple(items) => json!(["t", items.iter().map(PyValue::to_tagged).collect::<Vec<_>>()]),
            PyValue::Dict(pairs) => {
                json!(["d", pairs.iter().map(|(k, v)| json!([k.to_tagged(), v.to_tagged()])).collect::<Vec<_>>()])
            }
            // Never an input (inputs are literals); None keeps the job well-formed.
            PyValue::Opaque(_) => json!(["n"]),
        }
    }

    pub fn from_code_points(points: Vec<u32>) -> PyValue {
        match points.iter().map(|&p| char::from_u32(p)).collect::<Option<String>>() {
            Some(text) => PyValue::Str(text),
            None => PyValue::Surrogates(points),
        }
    }

    /// The code points of a str value (either kind).
    fn code_points(&self) -> Option<Vec<u32>> {
        match self {
            PyValue::Str(s) => Some(s.chars().map(u32::from).collect()),
            PyValue::Surrogates(points) => Some(points.clone()),
            _ => None,
        }
    }

    /// Python's `type(x).__name__`, for messages.
    pub fn type_name(&self) -> &str {
        match self {
            PyValue::None => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) | PyValue::BigInt(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) | PyValue::Surrogates(_) => "str",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Dict(_) => "dict",
            PyValue::Opaque(name) => name,
        }
    }

    pub fn is_dict(&self) -> bool {
        matches!(self, PyValue::Dict(_))
    }

    /// `a == b`. Opaque values equal nothing, so one that claims to equal everything earns nothing.
    pub fn py_eq(&self, other: &PyValue) -> bool {
        use PyValue::*;
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            return a.equals(&b);
        }
        match (self, other) {
            (None, None) => true,
            (Str(a), Str(b)) => a == b,
            (Surrogates(a), Surrogates(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y)),
            (Dict(a), Dict(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| matches!(lookup(b, k), Some(w) if v.py_eq(w)))
            }
            _ => false,
        }
    }

    /// `item in self`.
    pub fn contains(&self, item: &PyValue) -> PyResult<bool> {
        match (self, item) {
            (PyValue::Dict(pairs), _) => Ok(lookup(pairs, item).is_some()),
            (PyValue::List(v) | PyValue::Tuple(v), _) => Ok(v.iter().any(|x| x.py_eq(item))),
            (PyValue::Str(s), PyValue::Str(needle)) => Ok(s.contains(needle.as_str())),
            (PyValue::Str(_) | PyValue::Surrogates(_), PyValue::Str(_) | PyValue::Surrogates(_)) => {
                let (hay, needle) = (self.code_points().unwrap_or_default(), item.code_points().unwrap_or_default());
                Ok(needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle.as_slice()))
            }
            (PyValue::Str(_) | PyValue::Surrogates(_), other) => {
                raise(format!("TypeError: 'in <string>' requires string as left operand, not {}", other.type_name()))
            }
            (other, _) => raise(format!("TypeError: argument of type '{}' is not iterable", other.type_name())),
        }
    }

    pub fn py_len(&self) -> PyResult<usize> {
        match self {
            PyValue::Str(s) => Ok(s.chars().count()),
            PyValue::Surrogates(points) => Ok(points.len()),
            PyValue::List(v) | PyValue::Tuple(v) => Ok(v.len()),
            PyValue::Dict(pairs) => Ok(pairs.len()),
            other => raise(format!("TypeError: object of type '{}' has no len()", other.type_name())),
        }
    }

    /// `x[i]` with an int subscript (negative counts from the end).
    pub fn index(&self, i: i64) -> PyResult<PyValue> {
        let pick = |len: usize| -> PyResult<usize> {
            let at = if i < 0 { len as i64 + i } else { i };
            if at < 0 || at >= len as i64 {
                return raise(format!("IndexError: {} index out of range", self.type_name()));
            }
            Ok(at as usize)
        };
        match self {
            PyValue::List(v) | PyValue::Tuple(v) => Ok(v[pick(v.len())?].clone()),
            PyValue::Str(s) => {
                let chars: Vec<char> = s.chars().collect();
                Ok(PyValue::Str(chars[pick(chars.len())?].to_string()))
            }
            PyValue::Surrogates(points) => Ok(PyValue::from_code_points(vec![points[pick(points.len())?]])),
            PyValue::Dict(pairs) => {
                lookup(pairs, &PyValue::Int(i as i128)).cloned().ok_or_else(|| PyError(format!("KeyError: {i}")))
            }
            other => raise(format!("TypeError: '{}' object is not subscriptable", other.type_name())),
        }
    }

    /// `list(x)`: the items iterating over `x` yields.
    pub fn iterate(&self) -> PyResult<Vec<PyValue>> {
        match self {
            PyValue::List(v) | PyValue::Tuple(v) => Ok(v.clone()),
            PyValue::Str(s) => Ok(s.chars().map(|c| PyValue::Str(c.to_string())).collect()),
            PyValue::Surrogates(points) => Ok(points.iter().map(|&p| PyValue::from_code_points(vec![p])).collect()),
            PyValue::Dict(pairs) => Ok(pairs.iter().map(|(k, _)| k.clone()).collect()),
            other => raise(format!("TypeError: '{}' object is not iterable", other.type_name())),
        }
    }

    /// Whether Python could hash it (be a dict key or a set item).
    pub fn hashable(&self) -> bool {
        match self {
            PyValue::List(_) | PyValue::Dict(_) | PyValue::Opaque(_) => false,
            PyValue::Tuple(items) => items.iter().all(PyValue::hashable),
            _ => true,
        }
    }

    fn number(&self) -> Option<Number<'_>> {
        match self {
            PyValue::Bool(b) => Some(Number::Int(*b as i128)),
            PyValue::Int(n) => Some(Number::Int(*n)),
            PyValue::BigInt(digits) => Some(Number::Big(digits)),
            PyValue::Float(f) => Some(Number::Float(*f)),
            _ => None,
        }
    }
}

enum Number<'a> {
    Int(i128),
    Big(&'a str),
    Float(f64),
}

impl Number<'_> {
    fn equals(&self, other: &Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Big(a), Number::Big(b)) => a == b,
            (Number::Int(_), Number::Big(_)) | (Number::Big(_), Number::Int(_)) => false,
            (Number::Float(f), Number::Int(n)) | (Number::Int(n), Number::Float(f)) => float_equals_int(*f, *n),
            // An int too large for i128 equals a float only if the float is that exact integer.
            (Number::Float(f), Number::Big(d)) | (Number::Big(d), Number::Float(f)) => {
                f.is_finite() && f.fract() == 0.0 && format!("{f:.0}") == d.trim_start_matches('+')
            }
            (Number::Float(a), Number::Float(b)) => a == b,
        }
    }
}

fn float_equals_int(f: f64, n: i128) -> bool {
    // Exact comparison as Python does it: no rounding of the int.
    f.is_finite() && f.fract() == 0.0 && f.abs() < 1.0e38 && f as i128 == n
}

fn lookup<'a>(pairs: &'a [(PyValue, PyValue)], key: &PyValue) -> Option<&'a PyValue> {
    pairs.iter().find(|(k, _)| k.py_eq(key)).map(|(_, v)| v)
}

fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn parse_python_float(text: &str) -> Result<f64, String> {
    match text {
        "nan" => Ok(f64::NAN),
        "inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        _ => text.parse::<f64>().map_err(|_| format!("bad float {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(j: Json) -> PyValue {
        PyValue::from_tagged(&j).unwrap()
    }

    #[test]
    fn equality_follows_python() {
        assert!(v(json!(["b", true])).py_eq(&PyValue::Int(1)));
        assert!(v(json!(["f", "0.0"])).py_eq(&PyValue::Int(0)));
        assert!(!PyValue::None.py_eq(&PyValue::Int(0)));
        assert!(!PyValue::Str("10".into()).py_eq(&PyValue::Int(10)));
        assert!(!v(json!(["f", "nan"])).py_eq(&v(json!(["f", "nan"]))));
        assert!(!PyValue::Opaque("Liar".into()).py_eq(&PyValue::Int(0)));
        assert!(!v(json!(["l", [["i", "1"]]])).py_eq(&v(json!(["t", [["i", "1"]]]))));
        let a = v(json!(["d", [[["s", "a"], ["i", "1"]], [["s", "b"], ["f", "2.0"]]]]));
        let b = v(json!(["d", [[["s", "b"], ["i", "2"]], [["s", "a"], ["b", true]]]]));
        assert!(a.py_eq(&b));
        assert!(
            v(json!(["i", "123456789012345678901234567890123456789012"]))
                .py_eq(&v(json!(["i", "123456789012345678901234567890123456789012"])))
        );
    }

    #[test]
    fn operations_raise_like_python() {
        assert!(PyValue::Int(3).py_len().is_err());
        assert_eq!(PyValue::Str("ab".into()).py_len(), Ok(2));
        assert!(PyValue::List(vec![]).index(0).is_err());
        assert_eq!(PyValue::Str("xyz".into()).index(-1), Ok(PyValue::Str("z".into())));
        assert_eq!(
            PyValue::Dict(vec![(PyValue::Str("a".into()), PyValue::None)]).contains(&PyValue::Str("a".into())),
            Ok(true)
        );
        assert_eq!(PyValue::Str("abc".into()).contains(&PyValue::Str("bc".into())), Ok(true));
        assert!(PyValue::Str("abc".into()).contains(&PyValue::Int(1)).is_err());
        assert!(PyValue::Int(1).contains(&PyValue::Int(1)).is_err());
    }

    #[test]
    fn strings_with_surrogates_keep_every_code_point() {
        let lone = v(json!(["z", [0xD800]]));
        assert_eq!(lone, PyValue::Surrogates(vec![0xD800]));
        assert_eq!(lone.type_name(), "str");
        assert_eq!(lone.py_len(), Ok(1));
        assert!(lone.py_eq(&v(json!(["z", [0xD800]]))));
        assert!(!lone.py_eq(&PyValue::Str("\u{FFFD}".into())));
        // A pair of surrogates is two code points in Python, not the character they encode.
        let pair = v(json!(["z", [0xD83D, 0xDE00, 0x61]]));
        assert_eq!(pair.py_len(), Ok(3));
        assert!(!pair.py_eq(&PyValue::Str("😀a".into())));
        assert_eq!(pair.contains(&PyValue::Str("a".into())), Ok(true));
        assert_eq!(pair.index(-1), Ok(PyValue::Str("a".into())));
        // Without a surrogate it is an ordinary str.
        assert_eq!(v(json!(["z", [0x68, 0x69]])), PyValue::Str("hi".into()));
        let key = PyValue::Dict(vec![(lone.clone(), PyValue::Int(1))]);
        assert_eq!(key.contains(&lone), Ok(true));
        for bad in [json!(["z", "x"]), json!(["z", [-1]]), json!(["z", [0x110000]])] {
            assert!(PyValue::from_tagged(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_tags_are_rejected() {
        for bad in [json!(1), json!([]), json!(["zz"]), json!(["i", "12a"]), json!(["d", [[["n"]]]])] {
            assert!(PyValue::from_tagged(&bad).is_err(), "{bad}");
        }
    }
}
