//! Notification delivery for topics (the engine's [`NotificationSender`]): HTTP/S with reqwest,
//! mail through an SMTP relay with lettre.
//!
//! What counts as delivered, and what is worth another attempt:
//!
//! | answer | outcome |
//! |---|---|
//! | HTTP 2xx | delivered |
//! | HTTP 429, 5xx, no answer within the timeout, connection refused or reset | retryable |
//! | HTTP 1xx, 3xx (redirects are not followed), 4xx but 429 | not retryable: dead-lettered at once |
//! | SMTP relay accepts (2xx) | delivered |
//! | relay unreachable, timed out, transient 4xx reply | retryable |
//! | permanent 5xx reply (e.g. 550 recipient rejected), an address lettre cannot parse, no relay configured | not retryable |
//!
//! SNS retries 5xx and timeouts and treats a 4xx as final, as here; where SNS drops a
//! 4xx silently, this sender reports it, so the delivery is kept as a dead letter with the
//! status in its reason. 429 is retried because it asks for exactly that.
//!
//! Redirects are not followed so that a subscriber cannot bounce the server's requests to a
//! host the operator did not allow.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use stepyard_engine::topics::{DeliveryError, NotificationSender};

/// SNS gives an HTTP/S endpoint about 15 seconds to answer.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one SMTP conversation may take.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// The relay's host (plain SMTP: a relay the operator runs, e.g. on loopback).
    pub host: String,
    pub port: u16,
    /// The `From` address (`name@example.com` or `Name <name@example.com>`).
    pub from: String,
    /// AUTH credentials, when the relay asks for them.
    pub username: Option<String>,
    pub password: Option<String>,
    pub timeout: Duration,
}

/// How to build a [`Notifier`].
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub http_timeout: Duration,
    /// `None`: email deliveries fail (not retryable) until a relay is configured.
    pub smtp: Option<SmtpSettings>,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            smtp: None,
        }
    }
}

/// Sends HTTP/S notifications and mail. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

/// Why a [`Notifier`] cannot be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("invalid smtp_from {value:?}: {message}")]
    From { value: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

impl Notifier {
    pub fn new(config: NotifierConfig) -> Result<Notifier, NotifierError> {
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Stepyard-SNS-Agent")
            .build()
            .map_err(|e| NotifierError::Http(e.to_string()))?;
        let smtp = match config.smtp {
            Some(s) => {
                let from: Mailbox =
                    s.from.parse().map_err(|e: lettre::address::AddressError| {
                        NotifierError::From {
                            value: s.from.clone(),
                            message: e.to_string(),
                        }
                    })?;
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                    .port(s.port)
                    .timeout(Some(s.timeout))
                    .hello_name(ClientId::Domain("stepyard.localhost".into()));
                if let Some(user) = s.username {
                    builder =
                        builder.credentials(Credentials::new(user, s.password.unwrap_or_default()));
                }
                Some((builder.build(), from))
            }
            None => None,
        };
        Ok(Notifier { http, smtp })
    }
}

#[async_trait]
impl NotificationSender for Notifier {
    async fn send_http(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), DeliveryError> {
        let mut request = self.http.post(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.body(body.to_string()).send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "no answer in time"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            DeliveryError::retryable(format!("{what}: POST {url}: {e}"))
        })?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(()),
            429 | 500..=599 => Err(DeliveryError::retryable(format!(
                "the endpoint answered HTTP {status}"
            ))),
            _ => Err(DeliveryError::permanent(format!(
                "the endpoint answered HTTP {status}, which another attempt would not change"
            ))),
        }
    }

    async fn send_email(&self, to: &str, subject: &str, body: &str) -> Result<(), DeliveryError> {
        let Some((transport, from)) = &self.smtp else {
            return Err(DeliveryError::permanent(
                "this server has no SMTP relay configured (smtp_relay)",
            ));
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e| DeliveryError::permanent(format!("the address {to:?}: {e}")))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| DeliveryError::permanent(format!("cannot build the mail: {e}")))?;
        match transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!(
                "the SMTP relay refused the mail: {e}"
            ))),
            Err(e) => Err(DeliveryError::retryable(format!("SMTP: {e}"))),
        }
    }
}
