//! Topic rules (upstream-behaviour §3.1–§3.3, §1.5).
//!
//! This module owns everything about topic strings: the `TOPICS` /
//! `TOPICS_ALLOW_WILDCARDS` configuration ([`TopicRules`]), validation and
//! normalization of a destination's `topics`, the publish-time topic check,
//! wildcard pattern matching, fan-out topic matching, the destination list
//! `topics` filter and the tenant's derived `topics`. It is pure: no I/O.
//!
//! Patterns: `*` matches any run of characters (including none and including
//! dots); there are no other metacharacters. The bare entry `"*"` means "all
//! topics".

use std::fmt;

use serde_json::Value;

/// The destination entry that subscribes to every topic.
pub const ALL_TOPICS: &str = "*";

/// Topic configuration (`TOPICS`, `TOPICS_ALLOW_WILDCARDS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicRules {
    /// Configured topics; empty = any topic accepted.
    pub topics: Vec<String>,
    /// Whether destination topics may contain `*` patterns (other than `"*"`).
    pub allow_wildcards: bool,
}

/// Destination `topics` validation error (HTTP 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicsError {
    /// `validation failed: invalid topics`
    InvalidTopics,
    /// `validation failed: invalid topics format`
    InvalidFormat,
}

impl TopicsError {
    /// The upstream error message.
    pub fn message(self) -> &'static str {
        match self {
            TopicsError::InvalidTopics => "validation failed: invalid topics",
            TopicsError::InvalidFormat => "validation failed: invalid topics format",
        }
    }
}

impl fmt::Display for TopicsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for TopicsError {}

/// Publish-time topic error (HTTP 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishTopicError {
    /// `topic is required`
    Required,
    /// `topic is invalid`
    Invalid,
}

impl PublishTopicError {
    /// The upstream error message.
    pub fn message(self) -> &'static str {
        match self {
            PublishTopicError::Required => "topic is required",
            PublishTopicError::Invalid => "topic is invalid",
        }
    }
}

impl fmt::Display for PublishTopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for PublishTopicError {}

impl TopicRules {
    /// Parse a destination `topics` JSON value ("*" string or array of strings;
    /// anything else -> InvalidFormat), validate per §3.2, and return the
    /// normalized list (duplicates dropped keeping first, entries strictly
    /// covered by a sibling wildcard pattern dropped; ["*"] for all).
    pub fn destination_topics(&self, value: &Value) -> Result<Vec<String>, TopicsError> {
        let entries = parse_topics(value)?;
        self.validate(&entries)?;
        Ok(normalize(entries))
    }

    /// Publish-time topic check (§3.1): Err(PublishTopicError::Required) =
    /// "topic is required", Err(Invalid) = "topic is invalid".
    ///
    /// Without configured topics anything (even `""`) is accepted; otherwise
    /// the topic must be `*` or exactly one of the configured topics.
    pub fn check_publish_topic(&self, topic: &str) -> Result<(), PublishTopicError> {
        if self.topics.is_empty() {
            return Ok(());
        }
        if topic.is_empty() {
            return Err(PublishTopicError::Required);
        }
        if topic == ALL_TOPICS || self.topics.iter().any(|configured| configured == topic) {
            Ok(())
        } else {
            Err(PublishTopicError::Invalid)
        }
    }

    /// §3.2 validation of already-parsed entries.
    fn validate(&self, entries: &[String]) -> Result<(), TopicsError> {
        if entries.is_empty() {
            return Err(TopicsError::InvalidTopics);
        }
        if is_all_topics(entries) {
            return Ok(());
        }
        if self.topics.is_empty() {
            // Any exact topic; anything containing `*` (a bare "*" mixed with
            // other entries included) needs wildcards enabled.
            if !self.allow_wildcards && entries.iter().any(|entry| entry.contains('*')) {
                return Err(TopicsError::InvalidTopics);
            }
            return Ok(());
        }
        for entry in entries {
            let valid = if entry == ALL_TOPICS {
                false
            } else if entry.contains('*') {
                self.allow_wildcards
                    && self
                        .topics
                        .iter()
                        .any(|configured| pattern_matches(entry, configured))
            } else {
                self.topics.iter().any(|configured| configured == entry)
            };
            if !valid {
                return Err(TopicsError::InvalidTopics);
            }
        }
        Ok(())
    }
}

/// `"*"` or an array of strings; anything else is a format error.
fn parse_topics(value: &Value) -> Result<Vec<String>, TopicsError> {
    match value {
        Value::String(text) if text == ALL_TOPICS => Ok(vec![ALL_TOPICS.to_owned()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(topic) => Ok(topic.clone()),
                _ => Err(TopicsError::InvalidFormat),
            })
            .collect(),
        _ => Err(TopicsError::InvalidFormat),
    }
}

fn is_all_topics(entries: &[String]) -> bool {
    entries.len() == 1 && entries[0] == ALL_TOPICS
}

/// Drop exact duplicates and entries covered by another entry, keeping
/// first-seen order.
///
/// Entry `i` is dropped when another entry `j` covers it
/// (`pattern_matches(entries[j], entries[i])`) and either `j` is not covered
/// back by `i` (strictly more general) or `j` comes first (equivalent entries,
/// duplicates included: the first one is kept). Coverage is transitive, so
/// every dropped entry stays covered by a kept one and matching results never
/// change. Any `"*"` therefore collapses the list to `["*"]`.
fn normalize(entries: Vec<String>) -> Vec<String> {
    if entries.len() <= 1 {
        return entries;
    }
    let redundant: Vec<bool> = (0..entries.len())
        .map(|index| {
            let entry = &entries[index];
            entries.iter().enumerate().any(|(other_index, other)| {
                other_index != index
                    && pattern_matches(other, entry)
                    && (other_index < index || !pattern_matches(entry, other))
            })
        })
        .collect();
    entries
        .into_iter()
        .zip(redundant)
        .filter_map(|(entry, redundant)| (!redundant).then_some(entry))
        .collect()
}

/// `*` matches any run of characters incl. empty and dots; no other
/// metacharacters.
///
/// Greedy two-pointer matching with single-star backtracking:
/// O(len(pattern) · len(topic)) worst case, no exponential blow-up.
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    let pattern = pattern.as_bytes();
    let topic = topic.as_bytes();
    let (mut pattern_index, mut topic_index) = (0, 0);
    // Position just after the last `*` seen, and the topic position it is
    // currently assumed to stretch up to.
    let mut last_star: Option<(usize, usize)> = None;
    while topic_index < topic.len() {
        match pattern.get(pattern_index) {
            Some(b'*') => {
                pattern_index += 1;
                last_star = Some((pattern_index, topic_index));
            }
            Some(&byte) if byte == topic[topic_index] => {
                pattern_index += 1;
                topic_index += 1;
            }
            _ => match last_star {
                Some((after_star, star_end)) => {
                    // Let the last star swallow one more character and retry.
                    pattern_index = after_star;
                    topic_index = star_end + 1;
                    last_star = Some((after_star, star_end + 1));
                }
                None => return false,
            },
        }
    }
    pattern[pattern_index..].iter().all(|&byte| byte == b'*')
}

/// Fan-out topic match (§3.3): event topic "" or "*" matches everything;
/// destination ["*"] matches everything; else any pattern matches.
pub fn destination_matches_topic(destination_topics: &[String], event_topic: &str) -> bool {
    if event_topic.is_empty() || event_topic == ALL_TOPICS {
        return true;
    }
    destination_topics
        .iter()
        .any(|pattern| pattern_matches(pattern, event_topic))
}

/// Destination list `topics` filter (§1.5 destinations list): every requested
/// topic must be matched by the destination's topics; `*` destinations match
/// everything; requested ["*"] only matches `*` destinations.
pub fn destination_covers_all(destination_topics: &[String], requested: &[String]) -> bool {
    if destination_topics.iter().any(|topic| topic == ALL_TOPICS) {
        return true;
    }
    requested.iter().all(|wanted| {
        wanted != ALL_TOPICS
            && destination_topics
                .iter()
                .any(|pattern| pattern_matches(pattern, wanted))
    })
}

/// Tenant `topics` (§1.5 Tenant JSON): sorted union of destinations' topic
/// entries; ["*"] if any has "*".
pub fn tenant_topics<'a>(destinations: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let mut union: Vec<&str> = Vec::new();
    for topics in destinations {
        for topic in topics {
            if topic == ALL_TOPICS {
                return vec![ALL_TOPICS.to_owned()];
            }
            union.push(topic);
        }
    }
    union.sort_unstable();
    union.dedup();
    union.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    fn open_rules(allow_wildcards: bool) -> TopicRules {
        TopicRules {
            topics: Vec::new(),
            allow_wildcards,
        }
    }

    fn configured_rules(allow_wildcards: bool) -> TopicRules {
        TopicRules {
            topics: strings(&[
                "user.created",
                "user.updated",
                "user.deleted",
                "order.paid",
                "order.eu.completed",
            ]),
            allow_wildcards,
        }
    }

    fn normalized(rules: &TopicRules, value: Value) -> Result<Vec<String>, TopicsError> {
        rules.destination_topics(&value)
    }

    // ---- errors ------------------------------------------------------------

    #[test]
    fn error_messages() {
        assert_eq!(
            TopicsError::InvalidTopics.to_string(),
            "validation failed: invalid topics"
        );
        assert_eq!(
            TopicsError::InvalidFormat.to_string(),
            "validation failed: invalid topics format"
        );
        assert_eq!(PublishTopicError::Required.to_string(), "topic is required");
        assert_eq!(PublishTopicError::Invalid.to_string(), "topic is invalid");
    }

    // ---- destination_topics: format ---------------------------------------

    #[test]
    fn star_string_means_all() {
        for rules in [
            open_rules(false),
            configured_rules(false),
            configured_rules(true),
        ] {
            assert_eq!(normalized(&rules, json!("*")), Ok(strings(&["*"])));
            assert_eq!(normalized(&rules, json!(["*"])), Ok(strings(&["*"])));
        }
    }

    #[test]
    fn bad_formats() {
        let rules = open_rules(true);
        for value in [
            json!("user.created"),
            json!(""),
            json!(null),
            json!(1),
            json!(true),
            json!({"topics": ["a"]}),
            json!(["a", 1]),
            json!([null]),
            json!([["a"]]),
        ] {
            assert_eq!(
                normalized(&rules, value.clone()),
                Err(TopicsError::InvalidFormat),
                "{value}"
            );
        }
    }

    #[test]
    fn empty_array_is_invalid() {
        assert_eq!(
            normalized(&open_rules(true), json!([])),
            Err(TopicsError::InvalidTopics)
        );
        assert_eq!(
            normalized(&configured_rules(true), json!([])),
            Err(TopicsError::InvalidTopics)
        );
    }

    // ---- destination_topics: without TOPICS --------------------------------

    #[test]
    fn open_rules_accept_any_exact_topic() {
        let rules = open_rules(false);
        assert_eq!(
            normalized(&rules, json!(["anything", "user.created"])),
            Ok(strings(&["anything", "user.created"]))
        );
        assert_eq!(normalized(&rules, json!([""])), Ok(strings(&[""])));
    }

    #[test]
    fn open_rules_wildcards_need_flag() {
        let rules = open_rules(false);
        assert_eq!(
            normalized(&rules, json!(["user.*"])),
            Err(TopicsError::InvalidTopics)
        );
        assert_eq!(
            normalized(&rules, json!(["*", "user.created"])),
            Err(TopicsError::InvalidTopics)
        );
        let rules = open_rules(true);
        assert_eq!(
            normalized(&rules, json!(["user.*"])),
            Ok(strings(&["user.*"]))
        );
        assert_eq!(
            normalized(&rules, json!(["*.created", "order.*"])),
            Ok(strings(&["*.created", "order.*"]))
        );
    }

    #[test]
    fn open_rules_star_mixed_collapses_when_wildcards_allowed() {
        let rules = open_rules(true);
        assert_eq!(
            normalized(&rules, json!(["user.created", "*"])),
            Ok(strings(&["*"]))
        );
        assert_eq!(normalized(&rules, json!(["*", "*"])), Ok(strings(&["*"])));
    }

    // ---- destination_topics: with TOPICS ----------------------------------

    #[test]
    fn configured_rules_require_known_topics() {
        let rules = configured_rules(false);
        assert_eq!(
            normalized(&rules, json!(["user.created", "order.paid"])),
            Ok(strings(&["user.created", "order.paid"]))
        );
        assert_eq!(
            normalized(&rules, json!(["user.created", "user.exploded"])),
            Err(TopicsError::InvalidTopics)
        );
        assert_eq!(
            normalized(&rules, json!([""])),
            Err(TopicsError::InvalidTopics)
        );
        // No trimming, no case folding.
        assert_eq!(
            normalized(&rules, json!([" user.created"])),
            Err(TopicsError::InvalidTopics)
        );
        assert_eq!(
            normalized(&rules, json!(["User.Created"])),
            Err(TopicsError::InvalidTopics)
        );
    }

    #[test]
    fn configured_rules_reject_mixed_star() {
        for allow in [false, true] {
            let rules = configured_rules(allow);
            assert_eq!(
                normalized(&rules, json!(["*", "user.created"])),
                Err(TopicsError::InvalidTopics)
            );
            assert_eq!(
                normalized(&rules, json!(["*", "*"])),
                Err(TopicsError::InvalidTopics)
            );
        }
    }

    #[test]
    fn configured_rules_wildcards() {
        let rules = configured_rules(false);
        assert_eq!(
            normalized(&rules, json!(["user.*"])),
            Err(TopicsError::InvalidTopics)
        );
        let rules = configured_rules(true);
        assert_eq!(
            normalized(&rules, json!(["user.*"])),
            Ok(strings(&["user.*"]))
        );
        assert_eq!(
            normalized(&rules, json!(["order.*.completed"])),
            Ok(strings(&["order.*.completed"]))
        );
        assert_eq!(
            normalized(&rules, json!(["*.created"])),
            Ok(strings(&["*.created"]))
        );
        // Must match at least one configured topic.
        assert_eq!(
            normalized(&rules, json!(["invoice.*"])),
            Err(TopicsError::InvalidTopics)
        );
        assert_eq!(
            normalized(&rules, json!(["user.*", "invoice.*"])),
            Err(TopicsError::InvalidTopics)
        );
    }

    // ---- normalization ----------------------------------------------------

    #[test]
    fn normalization_drops_duplicates_keeping_first() {
        let rules = open_rules(false);
        assert_eq!(
            normalized(&rules, json!(["b", "a", "b", "a", "c"])),
            Ok(strings(&["b", "a", "c"]))
        );
    }

    #[test]
    fn normalization_drops_covered_entries() {
        let rules = open_rules(true);
        assert_eq!(
            normalized(&rules, json!(["user.*", "user.created"])),
            Ok(strings(&["user.*"]))
        );
        assert_eq!(
            normalized(&rules, json!(["user.created", "user.*", "order.paid"])),
            Ok(strings(&["user.*", "order.paid"]))
        );
        // A more general pattern absorbs a narrower one.
        assert_eq!(
            normalized(&rules, json!(["user.*.done", "user.*"])),
            Ok(strings(&["user.*"]))
        );
        assert_eq!(
            normalized(&rules, json!(["a.b.c", "a.*.c", "*"])),
            Ok(strings(&["*"]))
        );
    }

    #[test]
    fn normalization_keeps_overlapping_patterns() {
        let rules = open_rules(true);
        assert_eq!(
            normalized(&rules, json!(["*.created", "user.*"])),
            Ok(strings(&["*.created", "user.*"]))
        );
        assert_eq!(
            normalized(&rules, json!(["user.*", "*.created", "user.created"])),
            Ok(strings(&["user.*", "*.created"]))
        );
    }

    #[test]
    fn normalization_mutually_covering_patterns_keep_first() {
        let rules = open_rules(true);
        assert_eq!(
            normalized(&rules, json!(["user.*", "user.**"])),
            Ok(strings(&["user.*"]))
        );
        assert_eq!(
            normalized(&rules, json!(["user.**", "user.*"])),
            Ok(strings(&["user.**"]))
        );
        // ...even when a duplicate of the first comes later.
        assert_eq!(
            normalized(&rules, json!(["a*", "a**", "a*"])),
            Ok(strings(&["a*"]))
        );
    }

    #[test]
    fn normalization_with_configured_topics() {
        let rules = configured_rules(true);
        assert_eq!(
            normalized(&rules, json!(["user.created", "user.*", "user.created"])),
            Ok(strings(&["user.*"]))
        );
    }

    #[test]
    fn normalization_never_changes_matching() {
        let lists = [
            strings(&[
                "user.*",
                "user.created",
                "*.created",
                "order.*.paid",
                "order.*",
            ]),
            strings(&["a*", "a**", "*b", "ab", "a*b"]),
            strings(&["x", "x", "y.*", "y.z.*", "y.*.z"]),
        ];
        let probes = [
            "user.created",
            "user.x",
            "order.eu.paid",
            "order.",
            "a",
            "ab",
            "b",
            "x",
            "y.z.w",
            "y.q.z",
            "y.",
            "zzz",
        ];
        for list in lists {
            let normal = normalize(list.clone());
            assert!(normal.len() <= list.len());
            for probe in probes {
                assert_eq!(
                    destination_matches_topic(&list, probe),
                    destination_matches_topic(&normal, probe),
                    "{list:?} vs {normal:?} on {probe}"
                );
            }
        }
    }

    // ---- check_publish_topic ----------------------------------------------

    #[test]
    fn publish_topic_without_configuration() {
        let rules = open_rules(false);
        assert_eq!(rules.check_publish_topic(""), Ok(()));
        assert_eq!(rules.check_publish_topic("anything"), Ok(()));
        assert_eq!(rules.check_publish_topic("*"), Ok(()));
    }

    #[test]
    fn publish_topic_with_configuration() {
        for allow in [false, true] {
            let rules = configured_rules(allow);
            assert_eq!(
                rules.check_publish_topic(""),
                Err(PublishTopicError::Required)
            );
            assert_eq!(rules.check_publish_topic("user.created"), Ok(()));
            assert_eq!(rules.check_publish_topic("*"), Ok(()));
            assert_eq!(
                rules.check_publish_topic("user.exploded"),
                Err(PublishTopicError::Invalid)
            );
            // No pattern matching at publish.
            assert_eq!(
                rules.check_publish_topic("user.*"),
                Err(PublishTopicError::Invalid)
            );
            assert_eq!(
                rules.check_publish_topic(" user.created"),
                Err(PublishTopicError::Invalid)
            );
        }
    }

    // ---- pattern_matches ----------------------------------------------------

    #[test]
    fn pattern_exact() {
        assert!(pattern_matches("user.created", "user.created"));
        assert!(!pattern_matches("user.created", "user.create"));
        assert!(!pattern_matches("user.created", "user.created.x"));
        assert!(pattern_matches("", ""));
        assert!(!pattern_matches("", "a"));
        assert!(!pattern_matches("a", ""));
    }

    #[test]
    fn pattern_star_anywhere() {
        assert!(pattern_matches("*", ""));
        assert!(pattern_matches("*", "anything.at.all"));
        assert!(pattern_matches("user.*", "user.created"));
        assert!(pattern_matches("user.*", "user."));
        assert!(pattern_matches("user.*", "user.a.b.c"));
        assert!(!pattern_matches("user.*", "user"));
        assert!(!pattern_matches("user.*", "users.created"));
        assert!(pattern_matches("*.created", "user.created"));
        assert!(pattern_matches("*.created", ".created"));
        assert!(pattern_matches("*.created", "a.b.created"));
        assert!(!pattern_matches("*.created", "user.created.x"));
        assert!(pattern_matches("order.*.completed", "order.eu.completed"));
        assert!(pattern_matches(
            "order.*.completed",
            "order.eu.west.completed"
        ));
        assert!(pattern_matches("order.*.completed", "order..completed"));
        assert!(!pattern_matches("order.*.completed", "order.completed"));
        assert!(pattern_matches("a*b*c", "abc"));
        assert!(pattern_matches("a*b*c", "aXbYbZc"));
        assert!(!pattern_matches("a*b*c", "aXbYbZ"));
        assert!(pattern_matches("**", "x"));
        assert!(pattern_matches("a**", "a"));
    }

    #[test]
    fn pattern_needs_backtracking() {
        assert!(pattern_matches("*ab", "aab"));
        assert!(pattern_matches("*aab", "aaab"));
        assert!(pattern_matches("a*ab", "aabab"));
        assert!(!pattern_matches("*ab", "aba"));
        assert!(pattern_matches("*.*.x", "a.b.c.x"));
    }

    #[test]
    fn pattern_no_other_metacharacters() {
        assert!(!pattern_matches("user.?", "user.a"));
        assert!(!pattern_matches("user.+", "user.a"));
        assert!(!pattern_matches("user.[a]", "user.a"));
        assert!(!pattern_matches("user.created", "userXcreated"));
        assert!(pattern_matches("user.?", "user.?"));
    }

    #[test]
    fn pattern_literal_star_in_topic() {
        assert!(pattern_matches("*", "*"));
        assert!(pattern_matches("user.*", "user.*"));
        assert!(!pattern_matches("user.created", "user.*"));
    }

    #[test]
    fn pattern_unicode() {
        assert!(pattern_matches("café.*", "café.ouvert"));
        assert!(pattern_matches("*é", "xé"));
        assert!(!pattern_matches("*é", "xe"));
        assert!(pattern_matches("日本.*.東京", "日本.関東.東京"));
    }

    #[test]
    fn pattern_is_not_exponential() {
        let topic = "a".repeat(5_000);
        let pattern = format!("{}b", "a*".repeat(200));
        assert!(!pattern_matches(&pattern, &topic));
        let pattern = "*a".repeat(200);
        assert!(pattern_matches(&pattern, &topic));
    }

    // ---- destination_matches_topic ------------------------------------------

    #[test]
    fn fan_out_matching() {
        let all = strings(&["*"]);
        let some = strings(&["user.*", "order.paid"]);
        assert!(destination_matches_topic(&all, "anything"));
        assert!(destination_matches_topic(&some, "user.created"));
        assert!(destination_matches_topic(&some, "order.paid"));
        assert!(!destination_matches_topic(&some, "order.refunded"));
        assert!(!destination_matches_topic(&[], "order.paid"));
    }

    #[test]
    fn fan_out_empty_or_star_event_topic_matches_everything() {
        let some = strings(&["order.paid"]);
        assert!(destination_matches_topic(&some, ""));
        assert!(destination_matches_topic(&some, "*"));
        assert!(destination_matches_topic(&[], ""));
    }

    // ---- destination_covers_all ---------------------------------------------

    #[test]
    fn covers_all_star_destination() {
        let all = strings(&["*"]);
        assert!(destination_covers_all(
            &all,
            &strings(&["user.created", "x"])
        ));
        assert!(destination_covers_all(&all, &strings(&["*"])));
        assert!(destination_covers_all(&all, &[]));
    }

    #[test]
    fn covers_all_requires_every_topic() {
        let dest = strings(&["user.*", "order.paid"]);
        assert!(destination_covers_all(&dest, &strings(&["user.created"])));
        assert!(destination_covers_all(
            &dest,
            &strings(&["user.created", "order.paid"])
        ));
        assert!(!destination_covers_all(
            &dest,
            &strings(&["user.created", "order.refunded"])
        ));
        assert!(destination_covers_all(&dest, &[]));
    }

    #[test]
    fn covers_all_requested_star_only_matches_star_destinations() {
        let dest = strings(&["user.*", "order.paid"]);
        assert!(!destination_covers_all(&dest, &strings(&["*"])));
        assert!(!destination_covers_all(&strings(&["**"]), &strings(&["*"])));
        assert!(!destination_covers_all(
            &dest,
            &strings(&["user.created", "*"])
        ));
    }

    // ---- tenant_topics --------------------------------------------------------

    #[test]
    fn tenant_topics_union_sorted() {
        let first = strings(&["user.created", "order.paid"]);
        let second = strings(&["b.*", "order.paid", "a"]);
        assert_eq!(
            tenant_topics([first.as_slice(), second.as_slice()]),
            strings(&["a", "b.*", "order.paid", "user.created"])
        );
    }

    #[test]
    fn tenant_topics_star_wins() {
        let first = strings(&["user.created"]);
        let second = strings(&["*"]);
        assert_eq!(
            tenant_topics([first.as_slice(), second.as_slice()]),
            strings(&["*"])
        );
    }

    #[test]
    fn tenant_topics_empty() {
        assert!(tenant_topics(std::iter::empty::<&[String]>()).is_empty());
        let none: Vec<String> = Vec::new();
        assert!(tenant_topics([none.as_slice()]).is_empty());
    }

    #[test]
    fn tenant_topics_sorts_bytewise() {
        let list = strings(&["b", "B", "a", "_"]);
        assert_eq!(
            tenant_topics([list.as_slice()]),
            strings(&["B", "_", "a", "b"])
        );
    }
}
