//! The route map, held equal wherever it is written. Which function serves which method and
//! resource is written four times: each function's route table (`ROUTES` in
//! `functions/<name>/src/lib.rs`, which the function matches requests against), the template's
//! `Api` events (what API Gateway sends to that function), `infra/openapi.yaml` (what clients
//! are told) and the README's route table (what people read). The template is the reference:
//! `template::tests` holds the OpenAPI paths and the sample events to it; this file holds the
//! function tables and the README's table to it. A route added in one place only fails here.

use infra_checks::template;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

type Route = (String, String);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The template's routes per function binary (functions without `Api` events left out).
fn template_routes() -> Vec<(String, BTreeSet<Route>)> {
    template::load(&root().join("infra/template.yaml"))
        .unwrap()
        .into_iter()
        .filter(|f| !f.routes.is_empty())
        .map(|f| {
            let routes = f.routes.into_iter().map(|r| (r.method, r.path)).collect();
            (f.binary, routes)
        })
        .collect()
}

fn table(routes: impl Iterator<Item = (&'static str, &'static str)>) -> BTreeSet<Route> {
    routes
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

/// Each HTTP function's own route table, by its binary's name.
fn function_tables() -> Vec<(&'static str, BTreeSet<Route>)> {
    vec![
        ("login", table(login::routes())),
        ("forgot-password", table(forgot_password::routes())),
        ("reset-password", table(reset_password::routes())),
        ("tenants", table(tenants::routes())),
        ("partners", table(partners::routes())),
        ("presign", table(presign::routes())),
        ("query-router", table(query_router::routes())),
        ("reconcile", table(reconcile::routes())),
        ("users", table(users::routes())),
    ]
}

#[test]
fn every_function_routes_exactly_the_template_events_that_reach_it() {
    let deployed = template_routes();
    let tables = function_tables();
    for (binary, events) in &deployed {
        let (_, own) = tables
            .iter()
            .find(|(name, _)| name == binary)
            .unwrap_or_else(|| panic!("{binary} has Api events but no route table checked here"));
        let missing: Vec<_> = events.difference(own).collect();
        let extra: Vec<_> = own.difference(events).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{binary}: template events its ROUTES lack: {missing:?}; \
             ROUTES the template never sends it: {extra:?}"
        );
    }
    for (name, _) in &tables {
        assert!(
            deployed.iter().any(|(binary, _)| binary == name),
            "{name} has a route table but no Api events in the template"
        );
    }
}

/// The README's route table ("Routes so far"): `(method, path, function)` per route. A cell
/// names routes in backticks: `GET /x`, methods sharing a path (`GET`/`PATCH /x`), a sibling of
/// the previous path with its methods (`POST /x/suspend`, `/resume`), and bodies (`{...}`,
/// skipped).
fn readme_routes(readme: &str) -> BTreeSet<(String, String, String)> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Routes so far"))
        .expect("README has a \"Routes so far\" section");
    let rows = section
        .lines()
        .skip_while(|l| !l.starts_with("| method and path | function |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut out = BTreeSet::new();
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        let (routes, function) = (cells[0], cells[1].trim());
        let (mut pending, mut methods, mut last_path) = (Vec::new(), Vec::new(), String::new());
        for token in routes.split('`').skip(1).step_by(2) {
            let paths: Vec<String> = if token.starts_with('{') {
                continue;
            } else if token.chars().all(|c| c.is_ascii_uppercase()) {
                pending.push(token.to_string());
                continue;
            } else if let Some((method, path)) = token.split_once(' ') {
                pending.push(method.to_string());
                methods = std::mem::take(&mut pending);
                vec![path.to_string()]
            } else if let Some(sibling) = token.strip_prefix('/') {
                let parent = last_path.rsplit_once('/').expect("a path before it").0;
                vec![format!("{parent}/{sibling}")]
            } else {
                panic!("README route table: cannot read `{token}` in {row}");
            };
            for path in paths {
                for method in &methods {
                    out.insert((method.clone(), path.clone(), function.to_string()));
                }
                last_path = path;
            }
        }
        assert!(
            pending.is_empty(),
            "README route table: methods without a path in {row}"
        );
    }
    out
}

#[test]
fn the_readme_route_table_names_every_route_and_its_function() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let documented = readme_routes(&readme);
    let deployed: BTreeSet<(String, String, String)> = template_routes()
        .into_iter()
        .flat_map(|(binary, routes)| routes.into_iter().map(move |(m, p)| (m, p, binary.clone())))
        .collect();
    assert!(deployed.len() >= 30, "only {} routes", deployed.len());
    let missing: Vec<_> = deployed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&deployed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README's route table: routes (and functions) it lacks: {missing:?}; \
         rows the template does not have: {extra:?}"
    );
}

#[test]
fn the_readme_reader_expands_shared_methods_and_sibling_paths() {
    let readme =
        "# x\n\n## Routes so far\n\n| method and path | function | notes |\n|---|---|---|\n\
        | `GET`/`PATCH /t/{slug}` `{a}` | tenants | n |\n\
        | `DELETE /t/{slug}`, `POST /t/{slug}/suspend`, `/resume` | tenants | n |\n\nafter\n";
    let got: Vec<String> = readme_routes(readme)
        .into_iter()
        .map(|(m, p, f)| format!("{m} {p} {f}"))
        .collect();
    assert_eq!(
        got,
        [
            "DELETE /t/{slug} tenants",
            "GET /t/{slug} tenants",
            "PATCH /t/{slug} tenants",
            "POST /t/{slug}/resume tenants",
            "POST /t/{slug}/suspend tenants",
        ]
    );
}
