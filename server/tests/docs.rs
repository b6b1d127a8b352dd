//! The documentation names everything an operator or a shop developer can meet: every route of
//! the OpenAPI document and every error code in docs/api.md, every flag of `serve` and `edge`
//! in the README or docs/api.md.

mod common;

use clap::CommandFactory;
use common::*;
use shelfcast_protocol::ErrorCode;
use shelfcast_server::cli::Cli;

fn doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_error_code_is_in_the_api_docs() {
    let api = doc("docs/api.md");
    let missing: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).filter(|c| !api.contains(&format!("`{c}`"))).collect();
    assert!(missing.is_empty(), "error codes not in docs/api.md: {missing:?}");
}

#[tokio::test]
async fn every_route_of_the_openapi_document_is_in_the_api_docs() {
    let api = doc("docs/api.md");
    let hub = TestHub::start().await;
    let (status, openapi) = hub.client().get_json("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = openapi["paths"].as_object().expect("paths");
    assert!(paths.len() >= 10, "{paths:?}");
    let mut missing = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys().filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str())) {
            let route = format!("{} {path}", method.to_uppercase());
            if !api.contains(&format!("`{route}")) {
                missing.push(route);
            }
        }
    }
    assert!(missing.is_empty(), "routes not in docs/api.md (as `METHOD /path`): {missing:?}");
}

#[test]
fn every_flag_of_serve_and_edge_is_documented() {
    let docs = doc("README.md") + &doc("docs/api.md");
    let cli = Cli::command();
    let mut missing = Vec::new();
    for name in ["serve", "edge"] {
        let sub = cli.find_subcommand(name).expect(name);
        for flag in sub.get_arguments().chain(cli.get_arguments()).filter_map(|a| a.get_long()).filter(|l| *l != "help") {
            if !docs.contains(&format!("`--{flag}")) && !docs.contains(&format!(" --{flag}")) && !docs.contains(&format!("[--{flag}")) {
                missing.push(format!("{name} --{flag}"));
            }
        }
    }
    assert!(missing.is_empty(), "flags in no doc: {missing:?}");
}
