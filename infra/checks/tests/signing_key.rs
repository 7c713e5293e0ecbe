//! Only `login` can read the private signing key; the data and factor keys have their own readers (`../shared/DESIGN.md`, "Identity and
//! access"): in `infra/template.yaml`, no other function's policies or environment name the
//! signing key's secret, and none gets a key secret through the globals.

use std::path::PathBuf;

#[test]
fn only_login_may_read_or_name_the_private_signing_key() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("infra/template.yaml")).unwrap();
    let template: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let mut functions = 0;
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        functions += 1;
        let name = name.as_str().unwrap();
        // Its policies and its environment, as written.
        let props = serde_norway::to_string(&resource["Properties"]).unwrap();
        let private = props.contains("JwtSigningKeySecret");
        let public = props.contains("JwtPublicKeysSecret");
        if name == "LoginFunction" {
            assert!(private && !public, "{name}");
        } else {
            assert!(!private, "{name} can reach the private signing key");
        }
    }
    assert!(functions >= 4);
    assert_eq!(
        readers(&template, "DataEncryptionKeySecret"),
        ["QueryRouterFunction"]
    );
    assert_eq!(
        readers(&template, "FactorKeySecret"),
        ["LoginFunction", "UsersFunction"]
    );
    // No function gets a key secret through the globals.
    let globals = serde_norway::to_string(&template["Globals"]).unwrap();
    assert!(!globals.contains("JwtSigningKeySecret") && !globals.contains("JwtPublicKeysSecret"));
}

/// The functions that name `secret`, by name. The data key (tenant connection strings) is the
/// query router's alone; the factor key (second-factor secrets) is users' (enrolment seals)
/// and login's (a sign-in's second step opens): login, open to the internet, never holds the
/// tenants' key.
fn readers(template: &serde_norway::Value, secret: &str) -> Vec<String> {
    let mut out: Vec<String> = template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter(|(_, r)| {
            serde_norway::to_string(&r["Properties"])
                .unwrap()
                .contains(secret)
        })
        .map(|(n, _)| n.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}
