//! Reads the deployed SAM template (`infra/template.yaml`): which functions exist, which binary
//! each one is, its environment, timeout, and the API routes that reach it. API Gateway serves
//! exactly these routes, so the tests here hold every other copy of the route map to them.

use serde_norway::Value;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A literal string in the template.
    Literal(String),
    /// An intrinsic (`!Ref`, `!GetAtt`, `!Sub`): resolved locally from the environment variable
    /// of the same name.
    Intrinsic,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    pub environment: Vec<(String, EnvValue)>,
    pub timeout_secs: u64,
    pub memory_mb: u64,
    pub routes: Vec<RouteSpec>,
    /// Paths with an `ANY` event: every method the routes do not name reaches the function,
    /// which answers 405 with `Allow`.
    pub other_methods: Vec<String>,
    /// Paths whose CORS preflight (`OPTIONS`) the function answers itself (not a route: SAM's
    /// `Cors` mock answers every other path's).
    pub preflights: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template: {0}")]
    Io(#[from] std::io::Error),
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("template: {0}")]
    Shape(String),
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

fn env_vars(props: &Value) -> Vec<(String, EnvValue)> {
    let Some(Value::Mapping(vars)) = props.get("Environment").and_then(|e| e.get("Variables"))
    else {
        return Vec::new();
    };
    vars.iter()
        .filter_map(|(k, v)| {
            let name = k.as_str()?.to_string();
            let value = match v {
                Value::String(s) => EnvValue::Literal(s.clone()),
                Value::Number(n) => EnvValue::Literal(n.to_string()),
                Value::Bool(b) => EnvValue::Literal(b.to_string()),
                _ => EnvValue::Intrinsic,
            };
            Some((name, value))
        })
        .collect()
}

pub fn load(path: &Path) -> Result<Vec<FunctionSpec>, TemplateError> {
    parse(&std::fs::read_to_string(path)?)
}

pub fn parse(text: &str) -> Result<Vec<FunctionSpec>, TemplateError> {
    let doc: Value = serde_norway::from_str(text)?;
    let globals = doc
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .cloned()
        .unwrap_or(Value::Null);
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| TemplateError::Shape("no Resources".into()))?;
    let number = |props: &Value, name: &str, default: u64| {
        props
            .get(name)
            .or_else(|| globals.get(name))
            .and_then(|v| untag(v).as_u64())
            .unwrap_or(default)
    };
    let mut functions = Vec::new();
    for (id, resource) in resources {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let logical_id = id.as_str().unwrap_or_default().to_string();
        let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                TemplateError::Shape(format!(
                    "{logical_id} has no Metadata.BuildProperties.Binary"
                ))
            })?
            .to_string();
        let mut environment = env_vars(&globals);
        for (name, value) in env_vars(&props) {
            environment.retain(|(n, _)| n != &name);
            environment.push((name, value));
        }
        let (mut routes, mut other_methods, mut preflights) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(Value::Mapping(events)) = props.get("Events") {
            for event in events.values() {
                if event.get("Type").and_then(Value::as_str) != Some("Api") {
                    continue;
                }
                let p = event.get("Properties").cloned().unwrap_or(Value::Null);
                let (Some(path), Some(method)) = (
                    p.get("Path").and_then(Value::as_str),
                    p.get("Method").and_then(Value::as_str),
                ) else {
                    return Err(TemplateError::Shape(format!(
                        "{logical_id}: an Api event lacks Path or Method"
                    )));
                };
                if method.eq_ignore_ascii_case("any") {
                    other_methods.push(path.to_string());
                    continue;
                }
                if method.eq_ignore_ascii_case("options") {
                    preflights.push(path.to_string());
                    continue;
                }
                routes.push(RouteSpec {
                    method: method.to_ascii_uppercase(),
                    path: path.to_string(),
                });
            }
        }
        functions.push(FunctionSpec {
            logical_id,
            binary,
            environment,
            timeout_secs: number(&props, "Timeout", 3),
            memory_mb: number(&props, "MemorySize", 128),
            routes,
            other_methods,
            preflights,
        });
    }
    if functions.is_empty() {
        return Err(TemplateError::Shape(
            "no AWS::Serverless::Function resources".into(),
        ));
    }
    Ok(functions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_template_declares_login_and_its_routes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/template.yaml");
        let functions = load(&path).unwrap();
        let login = functions
            .iter()
            .find(|f| f.binary == "login")
            .expect("login function");
        let routes: Vec<String> = login
            .routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        for expected in [
            "POST /auth/login",
            "POST /auth/refresh",
            "POST /auth/logout",
            "GET /auth/me",
            "GET /.well-known/jwks.json",
            "GET /health/live",
            "GET /health/ready",
        ] {
            assert!(
                routes.contains(&expected.to_string()),
                "missing {expected}: {routes:?}"
            );
        }
        assert!(login
            .environment
            .contains(&("TABLE_NAME".into(), EnvValue::Intrinsic)));
        assert!(login
            .environment
            .contains(&("RUST_LOG".into(), EnvValue::Literal("info".into()))));
        assert_eq!(login.timeout_secs, 10);
    }

    #[test]
    fn only_the_mailed_link_routes_answer_their_own_preflights() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/template.yaml");
        let mut answered: Vec<(String, String)> = Vec::new();
        for f in load(&path).unwrap() {
            for p in &f.preflights {
                assert!(
                    f.routes.iter().any(|r| &r.path == p && r.method == "POST"),
                    "{}: a preflight of {p}, which it does not serve",
                    f.binary
                );
                answered.push((f.binary.clone(), p.clone()));
            }
        }
        answered.sort();
        assert_eq!(
            answered,
            vec![
                (
                    "reset-password".to_string(),
                    "/auth/accept-invitation".to_string()
                ),
                (
                    "reset-password".to_string(),
                    "/auth/reset-password".to_string()
                ),
            ]
        );
    }

    #[test]
    fn every_routed_path_sends_its_other_methods_to_the_same_function() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/template.yaml");
        for f in load(&path).unwrap() {
            let mut routed: Vec<&str> = f.routes.iter().map(|r| r.path.as_str()).collect();
            routed.sort();
            routed.dedup();
            let mut other: Vec<&str> = f.other_methods.iter().map(String::as_str).collect();
            other.sort();
            assert_eq!(
                routed, other,
                "{}: paths without (or with a stray) ANY event",
                f.binary
            );
        }
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_template_routes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut deployed: Vec<(String, String)> = load(&root.join("infra/template.yaml"))
            .unwrap()
            .into_iter()
            .flat_map(|f| f.routes)
            .map(|r| (r.method.to_uppercase(), r.path))
            .collect();
        let doc: serde_norway::Value = serde_norway::from_str(
            &std::fs::read_to_string(root.join("infra/openapi.yaml")).unwrap(),
        )
        .unwrap();
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_mapping().expect("paths") {
            for (method, operation) in item.as_mapping().unwrap() {
                let method = method.as_str().unwrap();
                if method == "parameters" {
                    continue;
                }
                let responses = operation["responses"].as_mapping().unwrap();
                assert!(
                    responses
                        .keys()
                        .any(|k| k.as_str().is_some_and(|s| s.starts_with('2'))),
                    "{method} {path:?} documents no success"
                );
                documented.push((method.to_uppercase(), path.as_str().unwrap().to_string()));
            }
        }
        deployed.sort();
        documented.sort();
        assert!(deployed.len() >= 10);
        assert_eq!(
            documented, deployed,
            "infra/openapi.yaml and infra/template.yaml differ"
        );
    }

    #[test]
    fn every_sample_event_targets_a_route_of_its_function() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let functions = load(&root.join("infra/template.yaml")).unwrap();
        let mut checked = 0;
        for dir in std::fs::read_dir(root.join("events")).unwrap() {
            let dir = dir.unwrap().path();
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            let f = functions
                .iter()
                .find(|f| f.binary == name)
                .unwrap_or_else(|| panic!("events/{name}: no such function"));
            for file in std::fs::read_dir(&dir).unwrap() {
                let path = file.unwrap().path();
                let event: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                if event.get("httpMethod").is_none() {
                    // A task (provision-step), a scheduled event (reconcile), a direct
                    // invocation (users: the first operator) or an S3 notification (meter):
                    // their own crates' tests read these.
                    assert!(
                        ["provision-step", "reconcile", "users", "meter"].contains(&name.as_str()),
                        "{path:?}: not an API Gateway event"
                    );
                    continue;
                }
                let (method, resource) = (
                    event["httpMethod"].as_str().unwrap(),
                    event["resource"].as_str().unwrap(),
                );
                assert!(
                    f.routes
                        .iter()
                        .any(|r| r.method == method && r.path == resource),
                    "{path:?}: {method} {resource} is not a route of {name}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} sample events");
    }

    #[test]
    fn function_env_overrides_globals_and_binary_is_required() {
        let t = "Globals:\n  Function:\n    Timeout: 5\n    Environment:\n      Variables:\n        A: g\n        B: g\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildProperties:\n        Binary: f\n    Properties:\n      Timeout: 9\n      Environment:\n        Variables:\n          B: !Ref X\n";
        let f = &parse(t).unwrap()[0];
        assert_eq!(
            f.environment,
            vec![
                ("A".into(), EnvValue::Literal("g".into())),
                ("B".into(), EnvValue::Intrinsic)
            ]
        );
        assert_eq!(f.timeout_secs, 9);
        assert!(parse("Resources:\n  F:\n    Type: AWS::Serverless::Function\n").is_err());
    }
}
