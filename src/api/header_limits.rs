//! Request head limits (`HTTP_MAX_HEADER_BYTES`, `HTTP_MAX_HEADERS`). A request over a limit gets
//! 431 with upstream's error body here. The HTTP parser is set to twice each limit
//! ([`parser_header_bytes`], [`parser_headers`]) so that a grossly oversized head is refused
//! while it is read, before any of it is kept: hyper then answers 431 itself, with an empty
//! body, and closes the connection.

use hyper::http::request::Parts;
use hyper::StatusCode;
use serde_json::json;

use super::error::ApiError;
use crate::config::HttpLimits;

/// hyper's default header count, which it keeps on the stack; any other count costs a heap
/// allocation per request.
pub const PARSER_DEFAULT_HEADERS: usize = 100;

/// The parser's hard limit on the request line plus headers.
pub fn parser_header_bytes(limits: &HttpLimits) -> usize {
    limits.max_header_bytes.saturating_mul(2)
}

/// The parser's hard limit on the header count.
pub fn parser_headers(limits: &HttpLimits) -> usize {
    limits.max_headers.saturating_mul(2)
}

/// The size of the request line plus headers as sent, give or take the line ends and
/// whitespace the parser dropped: `METHOD SP target SP HTTP/1.1 CRLF`, then `name: value CRLF`
/// per field.
pub fn head_bytes(parts: &Parts) -> usize {
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path().len(), |pq| pq.as_str().len());
    let request_line = parts.method.as_str().len() + 1 + target + 1 + 8 + 2;
    let fields: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    request_line + fields
}

/// 431 when the head is over a configured limit.
pub fn check(parts: &Parts, limits: &HttpLimits) -> Result<(), ApiError> {
    let count = parts.headers.len();
    if count > limits.max_headers {
        return Err(ApiError::with_data(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "request has {count} header fields, more than {}",
                limits.max_headers
            ),
            json!({"max_headers": limits.max_headers}),
        ));
    }
    let bytes = head_bytes(parts);
    if bytes > limits.max_header_bytes {
        return Err(ApiError::with_data(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "request headers take {bytes} bytes, more than {}",
                limits.max_header_bytes
            ),
            json!({"max_header_bytes": limits.max_header_bytes}),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(max_header_bytes: usize, max_headers: usize) -> HttpLimits {
        HttpLimits {
            max_header_bytes,
            max_headers,
            max_connections: 10,
            idle_timeout: Duration::from_secs(1),
            header_read_timeout: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(1),
        }
    }

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = hyper::Request::builder()
            .method("GET")
            .uri("/api/v1/tenants?limit=5");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).map(|r| r.into_parts().0).expect("request")
    }

    #[test]
    fn measures_the_head_as_sent() {
        // "GET /api/v1/tenants?limit=5 HTTP/1.1\r\n" + "host: a\r\n" + "x-k: vv\r\n"
        let p = parts(&[("host", "a"), ("x-k", "vv")]);
        assert_eq!(head_bytes(&p), 38 + 9 + 9);
    }

    #[test]
    fn refuses_too_many_fields_and_too_many_bytes() {
        let ok = parts(&[("a", "1"), ("b", "2")]);
        assert!(check(&ok, &limits(1024, 2)).is_ok());
        let many = parts(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let err = check(&many, &limits(1024, 2)).unwrap_err();
        assert_eq!(err.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(err.data, Some(json!({"max_headers": 2})));
        let long = "v".repeat(2000);
        let big = parts(&[("a", &long)]);
        let err = check(&big, &limits(1024, 50)).unwrap_err();
        assert_eq!(err.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(err.data, Some(json!({"max_header_bytes": 1024})));
        // Repeated fields count one by one.
        let repeated = parts(&[("a", "1"), ("a", "2"), ("a", "3")]);
        assert!(check(&repeated, &limits(1024, 2)).is_err());
    }
}
