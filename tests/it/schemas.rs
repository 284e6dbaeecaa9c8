//! `GET /topics` and the destination-type catalogue.

use hyper::StatusCode;
use serde_json::json;

use crate::support::{ServerOptions, TestServer};

const TYPES: [&str; 9] = [
    "webhook",
    "hookdeck",
    "aws_sqs",
    "aws_kinesis",
    "aws_s3",
    "gcp_pubsub",
    "azure_servicebus",
    "rabbitmq",
    "kafka",
];

#[tokio::test]
async fn topics_echo_configuration() {
    let server =
        TestServer::start(ServerOptions::default().env("TOPICS", "user.created,user.deleted"));
    let r = server.api.get("/api/v1/topics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!(["user.created", "user.deleted"]));
    let bare = TestServer::start(ServerOptions::default());
    assert_eq!(bare.api.get("/api/v1/topics").await.json(), json!([]));
}

#[tokio::test]
async fn every_upstream_destination_type_is_described() {
    let server = TestServer::start(ServerOptions::default());
    let list = server.api.get("/api/v1/destination-types").await.json();
    let types: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, TYPES);
    for entry in list.as_array().unwrap() {
        for key in ["label", "description", "icon", "instructions"] {
            assert!(
                entry[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} of {}",
                entry["type"]
            );
        }
        assert!(entry["config_fields"].is_array());
        assert!(entry["credential_fields"].is_array());
        for field in entry["config_fields"]
            .as_array()
            .unwrap()
            .iter()
            .chain(entry["credential_fields"].as_array().unwrap())
        {
            assert!(
                field["key"].is_string()
                    && field["type"].is_string()
                    && field["required"].is_boolean()
            );
        }
    }
    for kind in TYPES {
        let r = server
            .api
            .get(&format!("/api/v1/destination-types/{kind}"))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["type"], kind);
    }
    let r = server
        .api
        .get("/api/v1/destination-types/carrier_pigeon")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.is_empty());
}
