//! The six operator event topics and `OPERATOR_EVENTS_TOPICS`, the filter choosing which of
//! them are emitted.

/// An operator event topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorTopic {
    ConsecutiveFailure,
    DestinationDisabled,
    ExhaustedRetries,
    AttemptSuccess,
    AttemptFailed,
    SubscriptionUpdated,
}

impl OperatorTopic {
    pub const ALL: [OperatorTopic; 6] = [
        OperatorTopic::ConsecutiveFailure,
        OperatorTopic::DestinationDisabled,
        OperatorTopic::ExhaustedRetries,
        OperatorTopic::AttemptSuccess,
        OperatorTopic::AttemptFailed,
        OperatorTopic::SubscriptionUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperatorTopic::ConsecutiveFailure => "alert.destination.consecutive_failure",
            OperatorTopic::DestinationDisabled => "alert.destination.disabled",
            OperatorTopic::ExhaustedRetries => "alert.attempt.exhausted_retries",
            OperatorTopic::AttemptSuccess => "attempt.success",
            OperatorTopic::AttemptFailed => "attempt.failed",
            OperatorTopic::SubscriptionUpdated => "tenant.subscription.updated",
        }
    }

    pub fn parse(name: &str) -> Option<OperatorTopic> {
        OperatorTopic::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether this is one of the three alert topics.
    pub fn is_alert(self) -> bool {
        matches!(
            self,
            OperatorTopic::ConsecutiveFailure
                | OperatorTopic::DestinationDisabled
                | OperatorTopic::ExhaustedRetries
        )
    }
}

/// Which topics are emitted: `OPERATOR_EVENTS_TOPICS` as a comma list, `*` for all, empty for
/// none. Names that are not topics are kept aside so start-up can warn about them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicFilter {
    enabled: [bool; 6],
    pub unknown: Vec<String>,
}

impl TopicFilter {
    pub fn parse(text: &str) -> TopicFilter {
        let mut filter = TopicFilter::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                filter.enabled = [true; 6];
            } else if let Some(topic) = OperatorTopic::parse(name) {
                filter.enabled[topic as usize] = true;
            } else {
                filter.unknown.push(name.to_string());
            }
        }
        filter
    }

    pub fn all() -> TopicFilter {
        TopicFilter {
            enabled: [true; 6],
            unknown: Vec::new(),
        }
    }

    pub fn includes(&self, topic: OperatorTopic) -> bool {
        self.enabled[topic as usize]
    }

    pub fn is_empty(&self) -> bool {
        !self.enabled.iter().any(|on| *on)
    }

    /// The enabled topics' names.
    pub fn names(&self) -> Vec<&'static str> {
        OperatorTopic::ALL
            .into_iter()
            .filter(|t| self.includes(*t))
            .map(OperatorTopic::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_round_trips_by_name() {
        for topic in OperatorTopic::ALL {
            assert_eq!(OperatorTopic::parse(topic.as_str()), Some(topic));
        }
        assert_eq!(OperatorTopic::parse("attempt.*"), None);
    }

    #[test]
    fn the_filter_takes_a_list_a_star_or_nothing() {
        let some = TopicFilter::parse("attempt.failed, alert.destination.disabled,bogus");
        assert_eq!(
            some.names(),
            ["alert.destination.disabled", "attempt.failed"]
        );
        assert_eq!(some.unknown, ["bogus"]);
        assert_eq!(TopicFilter::parse("*").names().len(), 6);
        assert!(TopicFilter::parse("").is_empty());
        assert!(TopicFilter::parse(" , ").is_empty());
    }
}
