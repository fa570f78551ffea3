//! `GET /api/openapi.json`: a structurally valid OpenAPI 3 document that describes every
//! `/api` route the routers declare (read from their source, the one place routes are
//! written), whose `$ref`s all resolve, whose examples validate against their schemas, and
//! whose schemas match what the server really answers.

use crate::common;

use std::collections::BTreeSet;

use serde_json::{Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn spec(app: &common::TestApp) -> Value {
    let response = reqwest::get(app.url("/api/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    response.json().await.unwrap()
}

/// Every `(method, path)` under `/api` that `src/web/*.rs` routes, as `.route("/api/…", get(…))`
/// (a method router may chain: `get(a).post(b)`), with axum's `{param}` syntax as OpenAPI's.
fn declared_routes() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for call in source.split(".route(\"").skip(1) {
            let (path, rest) = call.split_once('"').unwrap();
            if !path.starts_with("/api") {
                continue;
            }
            // `, get(handler).post(other))` → get, post
            let mut rest = rest.trim_start_matches([',', ' ', '\n']);
            loop {
                let method = rest.split('(').next().unwrap().trim_start_matches('.');
                assert!(METHODS.contains(&method), "cannot read the method router of {path}: {rest:.40}");
                routes.insert((method.to_string(), path.to_string()));
                let close = matching_paren(rest);
                rest = &rest[close + 1..];
                if !rest.starts_with('.') {
                    break;
                }
            }
        }
    }
    assert!(routes.len() >= 10, "the source scan found too few routes: {routes:?}");
    routes
}

/// The index of the `)` closing the first `(` in `text`.
fn matching_paren(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {text:.60}")
}

fn described_routes(spec: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths is an object") {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((method.to_string(), path.clone()));
            }
        }
    }
    routes
}

/// Every `$ref` in `value`, with where it was found.
fn refs<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                if key == "$ref" {
                    found.push((at.clone(), item.as_str().expect("$ref is a string")));
                } else {
                    refs(item, format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                refs(item, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// `schema` as a document of its own that still resolves `#/components/…`.
fn standalone(spec: &Value, schema: &Value) -> Value {
    json!({"$ref": "#/$defs/it", "$defs": {"it": schema}, "components": spec["components"]})
}

fn check(spec: &Value, schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::validator_for(&standalone(spec, schema))
        .unwrap_or_else(|e| panic!("the schema of {what} is not a valid JSON Schema: {e}"));
    if let Err(error) = validator.validate(instance) {
        panic!("{what} does not validate: {error}\ninstance: {instance}\nschema: {schema}");
    }
}

/// Every example in the document, with the schema it must fit: media types' `example` and
/// `examples`, and schemas' own `example`/`examples`.
fn examples(value: &Value, at: String, found: &mut Vec<(String, Value, Value)>) {
    match value {
        Value::Object(map) => {
            let is_schema = map.contains_key("type") || map.contains_key("properties") || map.contains_key("$ref");
            let fits: Option<Value> = match map.get("schema") {
                Some(schema) => Some(schema.clone()),
                None if is_schema => {
                    let mut own = map.clone();
                    own.remove("example");
                    own.remove("examples");
                    Some(Value::Object(own))
                }
                None => None,
            };
            if let Some(schema) = fits {
                if let Some(example) = map.get("example") {
                    found.push((at.clone(), schema.clone(), example.clone()));
                }
                match map.get("examples") {
                    Some(Value::Array(list)) => {
                        list.iter().for_each(|e| found.push((at.clone(), schema.clone(), e.clone())));
                    }
                    // A media type's named examples: {"name": {"value": …}}.
                    Some(Value::Object(named)) => {
                        for (name, example) in named {
                            found.push((format!("{at}/examples/{name}"), schema.clone(), example["value"].clone()));
                        }
                    }
                    _ => {}
                }
            }
            for (key, item) in map {
                if key != "example" && key != "examples" {
                    examples(item, format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                examples(item, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// The schema of `path`'s `method` answer with `status`.
fn response_schema<'a>(spec: &'a Value, method: &str, path: &str, status: &str) -> &'a Value {
    &spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
}

#[tokio::test]
async fn the_api_description_is_complete_and_valid() {
    let app = common::spawn_app(|_| {}).await;
    let spec = spec(&app).await;

    // Structure: an OpenAPI 3 document with info and paths, each operation with answers.
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", spec["openapi"]);
    assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string());
    for (method, path) in described_routes(&spec) {
        let operation = &spec["paths"][&path][&method];
        let responses = operation["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}: no responses"));
        assert!(!responses.is_empty(), "{method} {path}");
        for (status, response) in responses {
            assert!(response["description"].is_string(), "{method} {path} {status} needs a description");
        }
    }

    // Every route the routers declare under /api is described, and nothing else is.
    let declared = declared_routes();
    let described = described_routes(&spec);
    let missing: Vec<_> = declared.difference(&described).collect();
    let extra: Vec<_> = described.difference(&declared).collect();
    assert!(missing.is_empty(), "routes missing from the description: {missing:?}");
    assert!(extra.is_empty(), "described routes no router declares: {extra:?}");

    // And each described route is served (not the fallback, not a wrong method).
    let client = reqwest::Client::new();
    for (method, path) in &described {
        let request = match method.as_str() {
            "get" => client.get(app.url(path)),
            _ => client.post(app.url(path)).json(&json!({})),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(status != 405 && !body.contains("There is no page here."), "{method} {path}: {status} {body}");
    }

    // Every $ref resolves inside the document.
    let mut found = Vec::new();
    refs(&spec, String::new(), &mut found);
    assert!(!found.is_empty());
    for (at, target) in found {
        let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("{at}: a remote $ref {target}"));
        assert!(spec.pointer(pointer).is_some(), "{at}: {target} does not resolve");
    }

    // The check below can fail: a body without its config, or a config without cycles, does not fit.
    let run_request = standalone(&spec, &json!({"$ref": "#/components/schemas/RunRequest"}));
    let validator = jsonschema::validator_for(&run_request).unwrap();
    assert!(!validator.is_valid(&json!({"question": "why?"})));
    let config =
        json!({"main_model": "m", "main_temperature": 0.1, "system_prompt": "{helper_response}", "layer_agents": []});
    assert!(!validator.is_valid(&json!({"question": "why?", "config": config})));

    // Operation ids are unique (client generators name functions after them).
    let ids: Vec<&str> = described.iter().map(|(m, p)| spec["paths"][p][m]["operationId"].as_str().unwrap()).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "{ids:?}");

    // Every example validates against its schema; the request bodies all have one.
    let mut found = Vec::new();
    examples(&spec, String::new(), &mut found);
    assert!(found.len() >= 7, "too few examples to check: {}", found.len());
    for (at, schema, example) in &found {
        check(&spec, schema, example, &format!("the example at {at}"));
    }
    for (method, path) in described.iter().filter(|(m, _)| m == "post") {
        let body = &spec["paths"][path][method]["requestBody"];
        if body.is_null() {
            continue;
        }
        let schema = &body["content"]["application/json"]["schema"];
        let target = schema["$ref"].as_str().unwrap_or_else(|| panic!("{path}: an inline body schema"));
        let component = spec.pointer(target.trim_start_matches('#')).unwrap();
        assert!(component.get("examples").or(component.get("example")).is_some(), "{path}: its body has no example");
    }

    // The schemas say what the server really answers.
    let claimed = client.post(app.url("/api/participants")).json(&json!({"name": "Spec Ada"})).send().await.unwrap();
    assert_eq!(claimed.status(), 201);
    let claimed: Value = claimed.json().await.unwrap();
    check(&spec, response_schema(&spec, "post", "/api/participants", "201"), &claimed, "POST /api/participants");
    let token = claimed["token"].as_str().unwrap();
    for path in ["/api/me", "/api/providers", "/api/leaderboard"] {
        let answer: Value =
            client.get(app.url(path)).header("x-participant-token", token).send().await.unwrap().json().await.unwrap();
        check(&spec, response_schema(&spec, "get", path, "200"), &answer, &format!("GET {path}"));
    }
    let refused: Value =
        client.post(app.url("/api/grade")).body("not json").send().await.unwrap().json().await.unwrap();
    check(&spec, response_schema(&spec, "post", "/api/grade", "400"), &refused, "a 400 of POST /api/grade");
}
