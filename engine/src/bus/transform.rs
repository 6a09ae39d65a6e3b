//! PLACEHOLDER until the pattern branch merges.
use serde_json::Value;
#[derive(Debug, Clone)]
pub struct InputTransformer {
    paths: Vec<(String, stepyard_statelang::Path)>,
    template: String,
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransformError {
    pub message: String,
}
pub struct Reserved<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    pub ingestion_time: &'a str,
}
impl InputTransformer {
    pub fn new(map: &[(String, String)], template: &str) -> Result<Self, TransformError> {
        let mut paths = Vec::new();
        for (k, p) in map {
            paths.push((
                k.clone(),
                stepyard_statelang::Path::parse(p).map_err(|e| TransformError { message: e.0 })?,
            ));
        }
        Ok(InputTransformer {
            paths,
            template: template.to_string(),
        })
    }
    pub fn apply(&self, event: &Value, r: &Reserved<'_>) -> Result<String, TransformError> {
        let mut out = self.template.clone();
        for (k, p) in &self.paths {
            let v = p
                .select(event, &Value::Null)
                .map(|v| v.into_owned())
                .unwrap_or(Value::Null);
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out = out.replace(&format!("<{k}>"), &text);
        }
        out = out
            .replace("<aws.events.rule-arn>", r.rule_arn)
            .replace("<aws.events.rule-name>", r.rule_name)
            .replace("<aws.events.event.ingestion-time>", r.ingestion_time);
        Ok(out)
    }
}
