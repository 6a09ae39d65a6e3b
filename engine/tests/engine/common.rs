//! Shared test harness: an engine on a temp dir with a manual clock.

use std::sync::Arc;

use serde_json::{Value, json};
use stepyard_engine::*;
use tempfile::TempDir;

pub struct Harness {
    pub engine: Engine,
    pub clock: ManualClock,
    pub dir: TempDir,
}

pub fn config(dir: &std::path::Path, clock: &ManualClock) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.clock = Arc::new(clock.clone());
    config
}

impl Harness {
    pub async fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::default();
        let engine = Engine::open(config(dir.path(), &clock))
            .await
            .expect("engine opens");
        Harness { engine, clock, dir }
    }

    /// Shuts the engine down cleanly and opens it again on the same folder and clock.
    pub async fn restart(self) -> Harness {
        let Harness { engine, clock, dir } = self;
        engine.shutdown().await.expect("shutdown");
        let engine = Engine::open(config(dir.path(), &clock))
            .await
            .expect("engine reopens");
        Harness { engine, clock, dir }
    }

    pub async fn machine(&self, name: &str, definition: Value) -> String {
        self.machine_of(name, definition, StateMachineType::Standard)
            .await
    }

    pub async fn machine_of(
        &self,
        name: &str,
        definition: Value,
        kind: StateMachineType,
    ) -> String {
        self.engine
            .create_state_machine(CreateStateMachine {
                name: name.into(),
                definition: definition.to_string(),
                kind,
                role_arn: None,
                tags: Default::default(),
            })
            .await
            .expect("state machine is valid")
            .arn
    }

    pub async fn start(&self, sm: &str, input: Value) -> String {
        self.engine
            .start_execution(StartExecution {
                state_machine_arn: sm.into(),
                name: None,
                input: Some(input.to_string()),
            })
            .await
            .expect("starts")
            .execution_arn
    }

    pub async fn run(&self, sm: &str, input: Value) -> ExecutionInfo {
        let arn = self.start(sm, input).await;
        self.engine.await_execution(&arn).await.expect("finishes")
    }

    /// Redrives a finished execution and waits until it finishes again.
    pub async fn redrive(&self, execution: &str) -> ExecutionInfo {
        self.engine
            .redrive_execution(execution)
            .await
            .expect("redrives");
        self.engine
            .await_execution(execution)
            .await
            .expect("finishes")
    }

    pub async fn history(&self, execution: &str) -> Vec<HistoryEvent> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .engine
                .get_execution_history(
                    execution,
                    PageRequest {
                        max_results: 1000,
                        next_token: token,
                    },
                    false,
                )
                .await
                .expect("history");
            out.extend(page.items);
            match page.next_token {
                Some(t) => token = Some(t),
                None => return out,
            }
        }
    }

    pub async fn types(&self, execution: &str) -> Vec<String> {
        self.history(execution)
            .await
            .iter()
            .map(|e| e.kind.to_string())
            .collect()
    }

    pub async fn wait_for(&self, execution: &str, kind: HistoryEventType) -> HistoryEvent {
        self.engine
            .wait_for_history_event(execution, kind)
            .await
            .expect("event comes")
    }
}

pub fn output(info: &ExecutionInfo) -> Value {
    serde_json::from_str(info.output.as_deref().unwrap_or("null")).expect("output is JSON")
}

pub fn pass_chain(n: usize) -> Value {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = json!({"Type": "Pass"});
        if i + 1 == n {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("P{}", i + 1));
        }
        states.insert(format!("P{i}"), s);
    }
    json!({"StartAt": "P0", "States": states})
}
