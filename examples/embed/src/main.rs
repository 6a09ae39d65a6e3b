//! Embedding the Stepyard engine in a Rust program.
//!
//! ```text
//! cargo run -p stepyard-example-embed -- ./embed-data
//! ```
//!
//! Opens an engine on a data folder, registers a closure as the Lambda function `greet`,
//! creates a state machine that calls it for each name (a Map) and then picks a greeting
//! (a Choice), runs it, and prints the execution's output.

use serde_json::{Value, json};
use stepyard_engine::{
    CreateStateMachine, Engine, EngineConfig, ExecutionInfo, StartExecution, StateMachineType,
    TaskError,
};

const DEFINITION: &str = r#"{
  "Comment": "Greet everyone, then say whether the party is big.",
  "StartAt": "GreetEach",
  "States": {
    "GreetEach": {
      "Type": "Map",
      "ItemsPath": "$.names",
      "MaxConcurrency": 4,
      "ItemProcessor": {
        "StartAt": "Greet",
        "States": {
          "Greet": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:greet",
            "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2}],
            "End": true
          }
        }
      },
      "ResultPath": "$.greetings",
      "Next": "HowBig"
    },
    "HowBig": {
      "Type": "Choice",
      "Choices": [{"Variable": "$.names[3]", "IsPresent": true, "Next": "Big"}],
      "Default": "Small"
    },
    "Big": {"Type": "Pass", "Parameters": {"party": "big", "greetings.$": "$.greetings"}, "End": true},
    "Small": {"Type": "Pass", "Parameters": {"party": "small", "greetings.$": "$.greetings"}, "End": true}
  }
}"#;

/// Opens an engine on `data_dir`, runs the workflow on `input` and returns the finished execution.
pub async fn run(
    data_dir: &std::path::Path,
    input: Value,
) -> stepyard_engine::Result<ExecutionInfo> {
    let engine = Engine::open(EngineConfig::new(data_dir)).await?;
    engine.register_function("greet", |name: Value| async move {
        match name.as_str() {
            Some(name) if !name.is_empty() => Ok(json!(format!("Hello, {name}!"))),
            _ => Err(TaskError::new(
                "InvalidName",
                format!("cannot greet {name}"),
            )),
        }
    });
    let machine = engine
        .create_state_machine(CreateStateMachine {
            name: "greeter".into(),
            definition: DEFINITION.into(),
            kind: StateMachineType::Standard,
            role_arn: None,
            tags: Default::default(),
        })
        .await?;
    let started = engine
        .start_execution(StartExecution {
            state_machine_arn: machine.arn,
            name: None,
            input: Some(input.to_string()),
        })
        .await?;
    let finished = engine.await_execution(&started.execution_arn).await?;
    engine.shutdown().await?;
    Ok(finished)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let data_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./embed-data".into());
    let input = json!({"names": ["Ada", "Grace", "Linus"]});
    match run(std::path::Path::new(&data_dir), input).await {
        Ok(info) => {
            println!(
                "{}",
                json!({
                    "status": info.status.as_str(),
                    "output": info.output.as_deref().and_then(|o| serde_json::from_str::<Value>(o).ok()),
                    "error": info.error,
                    "cause": info.cause,
                })
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_example_greets_everyone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let info = run(dir.path(), json!({"names": ["Ada", "Grace"]}))
            .await
            .expect("runs");
        assert_eq!(info.status.as_str(), "SUCCEEDED");
        let output: Value =
            serde_json::from_str(info.output.as_deref().unwrap_or("null")).expect("json");
        assert_eq!(
            output,
            json!({"party": "small", "greetings": ["Hello, Ada!", "Hello, Grace!"]})
        );
    }
}
