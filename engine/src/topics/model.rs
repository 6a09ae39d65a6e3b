//! The public types of topics, in SNS's terms (times in epoch milliseconds).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a subscription receives a topic's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// A POST of SNS's notification JSON to an `http://` URL.
    Http,
    /// The same to an `https://` URL.
    Https,
    /// A mail through the configured SMTP relay.
    Email,
    /// An invocation of a function (a name or a Lambda ARN) with SNS's Lambda event.
    Function,
    /// An event on an event bus (a name or an event-bus ARN).
    EventBus,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Email => "email",
            Protocol::Function => "function",
            Protocol::EventBus => "eventbus",
        }
    }

    /// `http`, `https`, `email`, `function` (also SNS's `lambda`), `eventbus`.
    pub fn parse(text: &str) -> Option<Protocol> {
        Some(match text {
            "http" => Protocol::Http,
            "https" => Protocol::Https,
            "email" => Protocol::Email,
            "function" | "lambda" => Protocol::Function,
            "eventbus" => Protocol::EventBus,
            _ => return None,
        })
    }
}

/// Retries of one subscription's deliveries: after a failed attempt the next waits
/// `min_delay * 2^(retry-1)` (with jitter), never less than `min_delay` nor more than
/// `max_delay`; after `num_retries` retries the delivery is dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPolicy {
    /// 0..=100.
    pub num_retries: u32,
    /// 1..=3600 and at most `max_delay_seconds`.
    pub min_delay_seconds: u32,
    /// 1..=3600.
    pub max_delay_seconds: u32,
}

impl DeliveryPolicy {
    /// SNS's defaults, without its very long tails: HTTP/S 3 retries 20 s apart (SNS's own
    /// default); email 12 retries from 10 s to 10 minutes (SNS's SMTP policy before its
    /// 10-minute post-backoff phase); functions and buses 15 retries from 1 s to 20 s (SNS's
    /// policy for AWS-managed endpoints before its post-backoff phase).
    pub fn default_for(protocol: Protocol) -> DeliveryPolicy {
        match protocol {
            Protocol::Http | Protocol::Https => DeliveryPolicy {
                num_retries: 3,
                min_delay_seconds: 20,
                max_delay_seconds: 20,
            },
            Protocol::Email => DeliveryPolicy {
                num_retries: 12,
                min_delay_seconds: 10,
                max_delay_seconds: 600,
            },
            Protocol::Function | Protocol::EventBus => DeliveryPolicy {
                num_retries: 15,
                min_delay_seconds: 1,
                max_delay_seconds: 20,
            },
        }
    }
}

/// CreateTopic (idempotent: the same name gives the existing topic).
#[derive(Debug, Clone, Default)]
pub struct CreateTopic {
    pub name: String,
    /// Used as the sender's display name in mails (SNS's `DisplayName`).
    pub display_name: Option<String>,
}

/// A topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    /// `arn:aws:sns:REGION:ACCOUNT:NAME`.
    pub arn: String,
    pub display_name: Option<String>,
    pub subscriptions: usize,
    pub created_ms: u64,
}

/// Subscribe.
#[derive(Debug, Clone)]
pub struct Subscribe {
    /// The topic's name or ARN.
    pub topic: String,
    pub protocol: Protocol,
    /// A URL, a mail address, a function name or ARN, an event bus name or ARN.
    pub endpoint: String,
    /// An SNS filter policy on the message attributes (EventBridge pattern syntax).
    pub filter_policy: Option<Value>,
    /// `None`: [`DeliveryPolicy::default_for`] the protocol.
    pub delivery_policy: Option<DeliveryPolicy>,
    /// HTTP/S: POST the message itself instead of the notification JSON (SNS's
    /// `RawMessageDelivery`).
    pub raw_message_delivery: bool,
}

/// A subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionInfo {
    pub id: String,
    /// `arn:aws:sns:REGION:ACCOUNT:TOPIC:ID`.
    pub arn: String,
    pub topic_name: String,
    pub topic_arn: String,
    pub protocol: Protocol,
    pub endpoint: String,
    pub filter_policy: Option<Value>,
    pub delivery_policy: DeliveryPolicy,
    pub raw_message_delivery: bool,
    pub created_ms: u64,
}

/// The type of a message attribute (SNS's `DataType`; a `Number.xyz` or `String.xyz` custom
/// type is read as its base type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeType {
    String,
    Number,
    #[serde(rename = "String.Array")]
    StringArray,
    Binary,
}

impl AttributeType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "String",
            AttributeType::Number => "Number",
            AttributeType::StringArray => "String.Array",
            AttributeType::Binary => "Binary",
        }
    }

    pub fn parse(text: &str) -> Option<AttributeType> {
        Some(match text {
            "String.Array" => AttributeType::StringArray,
            t if t == "String" || t.starts_with("String.") => AttributeType::String,
            t if t == "Number" || t.starts_with("Number.") => AttributeType::Number,
            t if t == "Binary" || t.starts_with("Binary.") => AttributeType::Binary,
            _ => return None,
        })
    }
}

/// One message attribute: its type and its value as text (`String.Array` is a JSON array,
/// `Binary` is base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttribute {
    #[serde(rename = "type")]
    pub kind: AttributeType,
    pub value: String,
}

impl MessageAttribute {
    pub fn string(value: impl Into<String>) -> MessageAttribute {
        MessageAttribute {
            kind: AttributeType::String,
            value: value.into(),
        }
    }
    pub fn number(value: impl ToString) -> MessageAttribute {
        MessageAttribute {
            kind: AttributeType::Number,
            value: value.to_string(),
        }
    }
}

/// Publish.
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    /// The topic's ARN (or name).
    pub topic_arn: String,
    /// 1 byte to 256 KiB (with the attributes).
    pub message: String,
    /// At most 100 printable characters, no line breaks.
    pub subject: Option<String>,
    pub message_attributes: BTreeMap<String, MessageAttribute>,
}

/// A delivery not yet done: waiting for its first attempt or for a retry.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    pub id: String,
    pub message_id: String,
    pub topic_name: String,
    pub subscription_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub due_ms: u64,
    pub last_error: Option<String>,
}

/// A delivery that failed for good (retries exhausted, or an answer that no retry changes).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The delivery's id (stable across redrives).
    pub id: String,
    pub message_id: String,
    pub topic_name: String,
    pub topic_arn: String,
    pub subscription_id: String,
    pub protocol: Protocol,
    pub endpoint: String,
    pub subject: Option<String>,
    pub message: String,
    pub attempts: u32,
    /// Why the last attempt failed.
    pub reason: String,
    pub published_ms: u64,
    pub dead_lettered_ms: u64,
}
