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

/// The operations of a node's `/openapi.json`, as `(METHOD, /path)`.
async fn documented(node: &Api) -> Vec<(String, String)> {
    let (status, openapi) = node.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    let mut routes = Vec::new();
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys().filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str())) {
            routes.push((method.to_uppercase(), path.clone()));
        }
    }
    routes.sort();
    routes
}

/// Whether the node routes `METHOD path` to a handler, rather than to its "nothing at this
/// path" fallback or a 405 (a handler may still answer 404 of its own, e.g. for an unknown
/// reservation).
async fn routed(node: &Api, method: &str, path: &str) -> bool {
    let concrete = path.replace("{id}", "no-such-reservation").replace("{location}", "berlin");
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let answer = reqwest::Client::new().request(method, node.url(&concrete)).send().await.unwrap();
    match answer.status().as_u16() {
        405 => false,
        404 => !answer.text().await.unwrap().contains("There is nothing at this path"),
        _ => true,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_node_documents_exactly_the_routes_it_serves() {
    let hub = TestHub::start().await;
    let (_dir, data) = data_dir();
    let edge = ChildHub::spawn_with(
        &["edge", "--location", "berlin", "--hub", "http://127.0.0.1:9", "--token", "store", "--listen", "127.0.0.1:0", "--data"],
        &data,
        &[],
    );
    let (hub_routes, edge_routes) = (documented(&hub.client()).await, documented(&edge.client()).await);
    for (node, routes) in [(hub.client(), &hub_routes), (edge.client(), &edge_routes)] {
        for (method, path) in routes {
            assert!(routed(&node, method, path).await, "{method} {path} is documented at {} but not served", node.url(""));
        }
    }
    let hub_only: Vec<_> = hub_routes.iter().filter(|r| !edge_routes.contains(r)).collect();
    let edge_only: Vec<_> = edge_routes.iter().filter(|r| !hub_routes.contains(r)).collect();
    assert!(hub_only.iter().any(|(_, path)| path == "/v1/reservations"), "reservations are the hub's: {hub_only:?}");
    assert!(edge_only.iter().any(|(_, path)| path == "/v1/sync"), "the sync status is the edge's: {edge_only:?}");
    for (node, others) in [(edge.client(), hub_only), (hub.client(), edge_only)] {
        for (method, path) in others {
            assert!(!routed(&node, method, path).await, "{} serves {method} {path} but does not document it", node.url(""));
        }
    }
}
