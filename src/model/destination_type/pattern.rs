//! Hand-written matchers for the regular expressions that appear as `pattern` in the embedded
//! metadata. The registry refuses to start with a pattern that has no matcher here, so the
//! published pattern and the server-side check cannot drift apart silently.

/// A known metadata `pattern`, checked without a regex engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PatternCheck {
    /// `^https?:\/\/[^\s]+$`
    HttpUrl,
    /// `^[a-zA-Z0-9_.-]+$`
    StreamName,
    /// `^[a-z]{2}-[a-z]+-[0-9]+$`
    AwsRegion,
    /// `^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$`
    AzureEntityName,
    /// `^[^\s/]+:[0-9]+$`
    HostPort,
}

impl PatternCheck {
    const KNOWN: [(&'static str, PatternCheck); 6] = [
        (r"^https?:\/\/[^\s]+$", PatternCheck::HttpUrl),
        (r"^https?://[^\s]+$", PatternCheck::HttpUrl),
        (r"^[a-zA-Z0-9_.-]+$", PatternCheck::StreamName),
        (r"^[a-z]{2}-[a-z]+-[0-9]+$", PatternCheck::AwsRegion),
        (
            r"^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$",
            PatternCheck::AzureEntityName,
        ),
        (r"^[^\s/]+:[0-9]+$", PatternCheck::HostPort),
    ];

    /// The matcher for a pattern string exactly as written in metadata, if there is one.
    pub fn from_pattern(pattern: &str) -> Option<PatternCheck> {
        Self::KNOWN
            .iter()
            .find(|(known, _)| *known == pattern)
            .map(|(_, check)| *check)
    }

    pub fn matches(self, value: &str) -> bool {
        match self {
            PatternCheck::HttpUrl => is_http_url(value),
            PatternCheck::StreamName => {
                !value.is_empty()
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            }
            PatternCheck::AwsRegion => is_aws_region(value),
            PatternCheck::AzureEntityName => is_azure_entity_name(value),
            PatternCheck::HostPort => is_host_port(value),
        }
    }
}

/// Whitespace as understood by RE2's `\s`: tab, newline, form feed, carriage return, space.
pub(super) fn is_regex_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// `^https?://[^\s]+$`
pub(super) fn is_http_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.chars().any(is_regex_space))
}

/// `^[a-z]{2}-[a-z]+-[0-9]+$`
fn is_aws_region(value: &str) -> bool {
    let mut parts = value.split('-');
    let (Some(area), Some(location), Some(number), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    area.len() == 2
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && !location.is_empty()
        && location.bytes().all(|b| b.is_ascii_lowercase())
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// `^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$`
fn is_azure_entity_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `^[^\s/]+:[0-9]+$`: a host (anything without whitespace or slashes, so no scheme) and a
/// numeric port.
fn is_host_port(value: &str) -> bool {
    if value.chars().any(|c| is_regex_space(c) || c == '/') {
        return false;
    }
    match value.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str) -> PatternCheck {
        PatternCheck::from_pattern(pattern).expect(pattern)
    }

    #[test]
    fn http_url() {
        let url = check(r"^https?:\/\/[^\s]+$");
        assert!(url.matches("https://example.com/hook?a=1"));
        assert!(url.matches("http://localhost:8080"));
        assert!(!url.matches("ftp://example.com"));
        assert!(!url.matches("https://"));
        assert!(!url.matches("https://exa mple.com"));
        assert!(!url.matches("example.com"));
        assert!(!url.matches("HTTPS://example.com"));
    }

    #[test]
    fn stream_name() {
        let name = check(r"^[a-zA-Z0-9_.-]+$");
        assert!(name.matches("my_stream.v2-prod"));
        assert!(!name.matches(""));
        assert!(!name.matches("my stream"));
        assert!(!name.matches("stream/1"));
    }

    #[test]
    fn aws_region() {
        let region = check(r"^[a-z]{2}-[a-z]+-[0-9]+$");
        assert!(region.matches("us-east-1"));
        assert!(region.matches("ap-southeast-2"));
        assert!(!region.matches("us-gov-west-1"));
        assert!(!region.matches("US-EAST-1"));
        assert!(!region.matches("use-east-1"));
        assert!(!region.matches("us-east-"));
        assert!(!region.matches("us-east"));
    }

    #[test]
    fn azure_entity_name() {
        let name = check(r"^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$");
        assert!(name.matches("a"));
        assert!(name.matches("orders.v1-queue_2"));
        assert!(!name.matches(""));
        assert!(!name.matches("-orders"));
        assert!(!name.matches("orders."));
        assert!(!name.matches("my queue"));
    }

    #[test]
    fn host_port() {
        let host_port = check(r"^[^\s/]+:[0-9]+$");
        assert!(host_port.matches("localhost:5672"));
        assert!(host_port.matches("[::1]:5672"));
        assert!(!host_port.matches("localhost"));
        assert!(!host_port.matches("amqp://localhost:5672"));
        assert!(!host_port.matches("localhost:"));
        assert!(!host_port.matches(":5672"));
        assert!(!host_port.matches("localhost:56a2"));
        assert!(!host_port.matches("local host:5672"));
    }

    #[test]
    fn unknown_pattern_has_no_matcher() {
        assert_eq!(PatternCheck::from_pattern("^.*$"), None);
    }
}
