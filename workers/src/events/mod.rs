//! HTTP delivery for the event bus's API destinations (the engine's [`HttpSender`], with reqwest).

use std::time::Duration;

use async_trait::async_trait;
use stepyard_engine::bus::{HttpCall, HttpSender};

/// Sends API destination requests. EventBridge gives an endpoint 5 seconds to answer.
#[derive(Clone)]
pub struct ReqwestHttpSender {
    client: reqwest::Client,
}

impl ReqwestHttpSender {
    pub fn new(timeout: Duration) -> ReqwestHttpSender {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        ReqwestHttpSender { client }
    }
}

impl Default for ReqwestHttpSender {
    fn default() -> Self {
        ReqwestHttpSender::new(Duration::from_secs(5))
    }
}

#[async_trait]
impl HttpSender for ReqwestHttpSender {
    async fn send(&self, call: HttpCall) -> Result<u16, String> {
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|e| format!("HTTP method {}: {e}", call.method))?;
        let mut request = self.client.request(method, &call.url);
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        let response = request
            .body(call.body)
            .send()
            .await
            .map_err(|e| format!("calling {}: {e}", call.url))?;
        Ok(response.status().as_u16())
    }
}
