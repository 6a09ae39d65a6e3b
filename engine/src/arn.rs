//! ARNs in AWS's form, and the names inside them.
//!
//! `arn:aws:states:REGION:ACCOUNT:stateMachine:NAME`,
//! `arn:aws:states:REGION:ACCOUNT:execution:SM_NAME:EXEC_NAME`,
//! `arn:aws:states:REGION:ACCOUNT:express:SM_NAME:EXEC_NAME:UUID`,
//! `arn:aws:states:REGION:ACCOUNT:activity:NAME`.

use crate::error::{Error, Result};

/// Region and account that every ARN this engine makes carries.
#[derive(Debug, Clone)]
pub(crate) struct ArnScope {
    pub region: String,
    pub account: String,
}

impl ArnScope {
    pub fn state_machine(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.region, self.account
        )
    }
    pub fn execution(&self, sm: &str, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:execution:{sm}:{name}",
            self.region, self.account
        )
    }
    pub fn express_execution(&self, sm: &str, name: &str, id: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:express:{sm}:{name}:{id}",
            self.region, self.account
        )
    }
    pub fn activity(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:activity:{name}",
            self.region, self.account
        )
    }
}

fn split(arn: &str) -> Option<(&str, Vec<&str>)> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 7 || parts[0] != "arn" || parts[2] != "states" {
        return None;
    }
    Some((parts[5], parts[6..].to_vec()))
}

/// The state machine name in a state machine ARN (a version or alias suffix is ignored).
pub(crate) fn state_machine_name(arn: &str) -> Result<String> {
    match split(arn) {
        Some(("stateMachine", rest)) if !rest[0].is_empty() => Ok(rest[0].to_string()),
        _ => Err(Error::InvalidArn(arn.to_string())),
    }
}

/// `(state machine name, execution name)` of a standard execution ARN.
pub(crate) fn execution_names(arn: &str) -> Result<(String, String)> {
    match split(arn) {
        Some(("execution", rest))
            if rest.len() == 2 && !rest[0].is_empty() && !rest[1].is_empty() =>
        {
            Ok((rest[0].to_string(), rest[1].to_string()))
        }
        Some(("express", rest)) if rest.len() == 3 => {
            Ok((rest[0].to_string(), rest[1].to_string()))
        }
        _ => Err(Error::InvalidArn(arn.to_string())),
    }
}

/// Whether an ARN names an express execution.
pub(crate) fn is_express_execution(arn: &str) -> bool {
    matches!(split(arn), Some(("express", _)))
}

/// The activity name in an activity ARN.
pub(crate) fn activity_name(arn: &str) -> Option<String> {
    match split(arn) {
        Some(("activity", rest)) if rest.len() == 1 && !rest[0].is_empty() => {
            Some(rest[0].to_string())
        }
        _ => None,
    }
}

/// Checks a state machine, execution or activity name against AWS's rules: 1 to 80 characters,
/// none of whitespace, brackets, wildcards, `"#%\^|~`$&,;:/` or control characters.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let bad =
        |c: char| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c);
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(bad) {
        return Err(Error::InvalidName(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_arns() {
        let scope = ArnScope {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        };
        let sm = scope.state_machine("orders");
        assert_eq!(
            sm,
            "arn:aws:states:us-east-1:123456789012:stateMachine:orders"
        );
        assert_eq!(state_machine_name(&sm).unwrap(), "orders");
        let ex = scope.execution("orders", "run-1");
        assert_eq!(
            execution_names(&ex).unwrap(),
            ("orders".to_string(), "run-1".to_string())
        );
        assert!(state_machine_name(&ex).is_err());
        assert_eq!(
            activity_name(&scope.activity("approve")).as_deref(),
            Some("approve")
        );
        assert!(validate_name("a b").is_err());
        assert!(validate_name("a:b").is_err());
        assert!(validate_name("ok-name_1").is_ok());
    }
}
