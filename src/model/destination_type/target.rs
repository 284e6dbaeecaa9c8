//! The human-readable `target` and optional `target_url` shown for a destination.

use super::providers::parse_hookdeck_token;
use super::validate::value_of;
use super::Kind;
use crate::model::StrMap;

const HOOKDECK_SOURCE_URL: &str = "https://dashboard.hookdeck.com/sources/";

/// `(target, target_url)` for a destination of the given kind.
pub(super) fn compute(
    kind: Kind,
    config: &StrMap,
    credentials: &StrMap,
    topics: &[String],
) -> (String, Option<String>) {
    let get = |key: &str| value_of(config, key);
    match kind {
        Kind::Webhook => (get("url").to_string(), None),
        Kind::Hookdeck => hookdeck(config, credentials),
        Kind::AwsSqs => {
            let queue_url = get("queue_url");
            (queue_url.to_string(), sqs_console_url(queue_url))
        }
        Kind::AwsKinesis => (format!("{} in {}", get("stream_name"), get("region")), None),
        Kind::AwsS3 => {
            let (bucket, region) = (get("bucket"), get("region"));
            (
                format!("{bucket} in {region}"),
                Some(format!(
                    "https://s3.console.aws.amazon.com/s3/buckets/{bucket}?region={region}"
                )),
            )
        }
        Kind::GcpPubsub => {
            let (project, topic) = (get("project_id"), get("topic"));
            (
                format!("{project}/{topic}"),
                Some(format!(
                    "https://console.cloud.google.com/cloudpubsub/topic/detail/{topic}?project={project}"
                )),
            )
        }
        Kind::AzureServicebus => (azure_servicebus(config, credentials), None),
        Kind::Rabbitmq => (
            format!("{} -> {}", get("exchange"), topics.join(", ")),
            None,
        ),
        Kind::Kafka => {
            let topic = get("topic");
            let first_broker = get("brokers")
                .split(',')
                .map(str::trim)
                .find(|broker| !broker.is_empty());
            let target = match first_broker {
                Some(broker) => format!("{broker} / {topic}"),
                None => topic.to_string(),
            };
            (target, None)
        }
    }
}

/// The source name when known, else the source id from the token (or from the config, where the
/// registry records it).
fn hookdeck(config: &StrMap, credentials: &StrMap) -> (String, Option<String>) {
    let source_name = value_of(config, "source_name");
    let source_id = value_of(config, "source_id");
    if !source_name.is_empty() && !source_id.is_empty() {
        return (
            source_name.to_string(),
            Some(format!("{HOOKDECK_SOURCE_URL}{source_id}")),
        );
    }
    let by_id = |id: &str| {
        (
            format!("Hookdeck source ID: {id}"),
            Some(format!("{HOOKDECK_SOURCE_URL}{id}")),
        )
    };
    let token = value_of(credentials, "token");
    if !token.is_empty() {
        return match parse_hookdeck_token(token) {
            Some(id) => by_id(&id),
            None => ("Hookdeck (invalid token)".to_string(), None),
        };
    }
    if !source_id.is_empty() {
        return by_id(source_id);
    }
    ("Hookdeck (no token)".to_string(), None)
}

/// Console link for queues hosted on `sqs.<region>.amazonaws.com`.
fn sqs_console_url(queue_url: &str) -> Option<String> {
    if !queue_url.contains(".amazonaws.com/") || !queue_url.contains("sqs.") {
        return None;
    }
    let (_, after_scheme) = queue_url.split_once("://")?;
    let host = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let mut labels = host.split('.');
    let (Some("sqs"), Some(region), Some(_)) = (labels.next(), labels.next(), labels.next()) else {
        return None;
    };
    Some(format!(
        "https://{region}.console.aws.amazon.com/sqs/v3/home?region={region}#/queues/{}",
        query_escape(queue_url)
    ))
}

/// `<namespace>/<name>` when the connection string names an `sb://<namespace>.…` endpoint.
fn azure_servicebus(config: &StrMap, credentials: &StrMap) -> String {
    let Some(name) = config.get("name") else {
        return String::new();
    };
    let namespace = value_of(credentials, "connection_string")
        .split(';')
        .filter_map(|part| part.strip_prefix("Endpoint="))
        .find_map(|endpoint| {
            let host = endpoint.strip_prefix("sb://").unwrap_or(endpoint);
            host.split_once('.')
                .map(|(namespace, _)| namespace)
                .filter(|namespace| !namespace.is_empty())
        });
    match namespace {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.clone(),
    }
}

/// Query-component escaping: unreserved characters kept, space as `+`, the rest `%XX`.
fn query_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                escaped.push(char::from(byte));
            }
            b' ' => escaped.push('+'),
            _ => escaped.push_str(&format!("%{byte:02X}")),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_escaping() {
        assert_eq!(
            query_escape("https://a.b/c d?e=f"),
            "https%3A%2F%2Fa.b%2Fc+d%3Fe%3Df"
        );
    }

    #[test]
    fn sqs_console_links_only_for_aws_hosts() {
        assert_eq!(
            sqs_console_url("https://sqs.us-west-2.amazonaws.com/123456789012/my-queue").as_deref(),
            Some("https://us-west-2.console.aws.amazon.com/sqs/v3/home?region=us-west-2#/queues/https%3A%2F%2Fsqs.us-west-2.amazonaws.com%2F123456789012%2Fmy-queue")
        );
        assert_eq!(
            sqs_console_url("http://localhost:4566/000000000000/q"),
            None
        );
        assert_eq!(
            sqs_console_url("https://queue.amazonaws.com/sqs.x/123/q"),
            None
        );
    }
}
