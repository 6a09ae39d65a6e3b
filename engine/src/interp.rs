//! The interpreter: a pure transition `apply(record, definition, command) -> Transition`.
//!
//! **Invariant:** nothing here does I/O, reads a clock or spawns anything. Time comes in as
//! [`Ctx::now_ms`], ids from [`Ctx::ids`]. The result is data: the writes (execution record,
//! history chunk, timers, tokens, dispatches) that the engine commits in ONE batch, and the
//! effects (dispatch a worker, wake the timer loop, tell waiters) it runs only after the commit.
//!
//! One call runs every state it can without waiting: a chain of Pass/Choice states, the start of
//! every Parallel branch and Map iteration, up to the next Task, Wait or end. So effect-free runs
//! of states cost one commit.

use std::collections::VecDeque;

use serde_json::{Value, json};
use std::collections::BTreeMap;

use stepyard_statelang::{
    self as asl, Completed, Entered, ErrorName, ErrorOutcome, ProcessorMode, Scope, State,
    StateMachine, StatesError, Variables, Vars, WaitUntil,
};

use crate::arn::{ArnScope, activity_name};
use crate::clock::IdGenerator;
use crate::history::{HistoryEvent, HistoryEventType as E};
use crate::model::ExecutionStatus;
use crate::records::*;
use crate::store::WriteSet;
use crate::worker::TaskError;

/// The variables a thread sees: its own scope's, then its parents' up to the root (or up
/// to a distributed Map's iteration, which sees none from outside).
struct ThreadVars<'a> {
    threads: &'a BTreeMap<u32, Thread>,
    tid: u32,
}

impl Variables for ThreadVars<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        let mut tid = self.tid;
        loop {
            let t = self.threads.get(&tid)?;
            if let Some(v) = t.vars.get(name) {
                return Some(v);
            }
            if t.isolated {
                return None;
            }
            tid = t.parent.as_ref()?.thread;
        }
    }
}

/// What the engine knows and may hand to a transition.
pub(crate) struct Ctx<'a> {
    pub now_ms: u64,
    pub ids: &'a dyn IdGenerator,
    pub scope: &'a ArnScope,
    /// Build history events (false for EXPRESS).
    pub history: bool,
    /// Whether the definition reads the context object (`$$`); if not, none is built.
    pub uses_context: bool,
    pub max_payload_bytes: usize,
    /// Unique, increasing numbers (activity queue order).
    pub next_seq: &'a (dyn Fn() -> u64 + Sync),
}

/// Something that happened to an execution.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    Start,
    /// A worker call answered (for `.waitForTaskToken` this is the hand-over of the token).
    WorkerAnswered {
        thread: u32,
        invocation_id: String,
        result: Result<Value, TaskError>,
    },
    /// SendTaskSuccess / SendTaskFailure.
    TokenAnswered {
        thread: u32,
        invocation_id: String,
        result: Result<Value, TaskError>,
    },
    ActivityStarted {
        thread: u32,
        invocation_id: String,
        worker_name: String,
    },
    Heartbeat {
        thread: u32,
        invocation_id: String,
    },
    TimerFired {
        timer: u64,
        due_ms: u64,
    },
    Stop {
        error: Option<String>,
        cause: Option<String>,
    },
    Redrive,
}

/// An effect to run after the transition is durable.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    Dispatch(DispatchRecord),
    EnqueueActivity(ActivityQueueRecord),
    TimerArmed { timer: u64, due_ms: u64 },
    TimerCancelled { timer: u64 },
    Finished,
}

/// The outcome of one command.
#[derive(Default)]
pub(crate) struct Transition {
    pub writes: WriteSet,
    pub events: Vec<HistoryEvent>,
    pub effects: Vec<Effect>,
    /// The command changed nothing (a late answer, a stale timer): no record write needed.
    pub unchanged: bool,
    /// States entered, counted whether or not history is kept (EXPRESS keeps none).
    pub states_entered: u64,
}

/// Runs `command` against `record`. `root` is the parsed definition of `record.revision_id`.
pub(crate) fn apply(
    record: &mut ExecutionRecord,
    root: &StateMachine,
    command: Command,
    ctx: &Ctx<'_>,
) -> Transition {
    let mut step = Step {
        rec: record,
        root,
        ctx,
        env: EngineEnv { ids: ctx.ids },
        out: Transition::default(),
        ready: VecDeque::new(),
        input_value: None,
        last_output: None,
    };
    step.command(command);
    step.run_ready();
    step.out
}

struct EngineEnv<'a> {
    ids: &'a dyn IdGenerator,
}

impl asl::Env for EngineEnv<'_> {
    fn uuid(&mut self) -> String {
        self.ids.new_id()
    }
    fn random(&mut self) -> f64 {
        (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Entering the state: write `*StateEntered`.
    Enter,
    /// Running the state's work again after a retry back-off.
    Retry,
}

struct Step<'a> {
    rec: &'a mut ExecutionRecord,
    root: &'a StateMachine,
    ctx: &'a Ctx<'a>,
    env: EngineEnv<'a>,
    out: Transition,
    ready: VecDeque<(u32, Run)>,
    input_value: Option<Value>,
    /// `(thread, text)` of the output just written in a `*StateExited`: the next state's input.
    last_output: Option<(u32, String)>,
}

/// A value's JSON text. `serde_json::to_string` writes straight into a buffer; `Display`
/// (`value.to_string()`) goes through `fmt::Formatter` for every token and took twice as long.
fn text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
}

fn iso(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn machine<'m>(root: &'m StateMachine, path: &[(String, u32)]) -> Option<&'m StateMachine> {
    let mut m = root;
    for (name, branch) in path {
        m = match m.states.get(name)? {
            State::Parallel(p) => p.branches.get(*branch as usize)?,
            State::Map(map) => &map.item_processor,
            _ => return None,
        };
    }
    Some(m)
}

fn entered_kind(state: &State) -> E {
    match state {
        State::Pass(_) => E::PassStateEntered,
        State::Task(_) => E::TaskStateEntered,
        State::Choice(_) => E::ChoiceStateEntered,
        State::Wait(_) => E::WaitStateEntered,
        State::Succeed(_) => E::SucceedStateEntered,
        State::Fail(_) => E::FailStateEntered,
        State::Parallel(_) => E::ParallelStateEntered,
        State::Map(_) => E::MapStateEntered,
    }
}

fn exited_kind(state: &State) -> Option<E> {
    Some(match state {
        State::Pass(_) => E::PassStateExited,
        State::Task(_) => E::TaskStateExited,
        State::Choice(_) => E::ChoiceStateExited,
        State::Wait(_) => E::WaitStateExited,
        State::Succeed(_) => E::SucceedStateExited,
        State::Fail(_) => return None,
        State::Parallel(_) => E::ParallelStateExited,
        State::Map(_) => E::MapStateExited,
    })
}

/// How a Task `Resource` is run and named in history.
struct ResourcePlan {
    family: TaskFamily,
    kind: TaskKind,
    resource_type: String,
    resource_name: String,
    worker_resource: String,
    function_name: Option<String>,
    input: Value,
    wrap_lambda_invoke: bool,
    activity: Option<String>,
}

fn plan_resource(resource: &str, parameters: Value, scope: &ArnScope) -> ResourcePlan {
    let callback = resource.ends_with(".waitForTaskToken");
    let kind = if callback {
        TaskKind::Callback
    } else {
        TaskKind::Call
    };
    let mut plan = ResourcePlan {
        family: TaskFamily::Task,
        kind,
        resource_type: String::new(),
        resource_name: resource.to_string(),
        worker_resource: resource.to_string(),
        function_name: None,
        input: Value::Null,
        wrap_lambda_invoke: false,
        activity: None,
    };
    if let Some(name) = activity_name(resource) {
        plan.family = TaskFamily::Activity;
        plan.kind = TaskKind::Activity;
        plan.activity = Some(name);
        plan.input = parameters;
        return plan;
    }
    let parts: Vec<&str> = resource.split(':').collect();
    if parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function" {
        plan.family = TaskFamily::Lambda;
        plan.function_name = Some(parts[6].to_string());
        plan.worker_resource = function_arn(scope, parts[6]);
        plan.input = parameters;
        return plan;
    }
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::") {
        let (service, action) = rest.split_once(':').unwrap_or((rest, ""));
        plan.resource_type = service.to_string();
        plan.resource_name = action.to_string();
        if service == "lambda" && action.starts_with("invoke") {
            let function = parameters
                .get("FunctionName")
                .and_then(Value::as_str)
                .map(|f| {
                    // A full ARN, a partial ARN or a plain name; a version/alias qualifier is dropped.
                    let parts: Vec<&str> = f.split(':').collect();
                    match parts.iter().position(|p| *p == "function") {
                        Some(i) if i + 1 < parts.len() => parts[i + 1].to_string(),
                        _ => parts[0].to_string(),
                    }
                })
                .unwrap_or_default();
            plan.worker_resource = function_arn(scope, &function);
            plan.function_name = Some(function);
            plan.input = parameters.get("Payload").cloned().unwrap_or(json!({}));
            plan.wrap_lambda_invoke = !callback;
            return plan;
        }
    }
    plan.input = parameters;
    plan
}

fn function_arn(scope: &ArnScope, name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:function:{name}",
        scope.region, scope.account
    )
}

impl<'a> Step<'a> {
    // ---- events, timers -------------------------------------------------------------

    fn emit(&mut self, previous: u64, kind: E, details: impl FnOnce() -> Value) -> u64 {
        self.rec.rt.last_event += 1;
        let id = self.rec.rt.last_event;
        if self.ctx.history {
            self.out.events.push(HistoryEvent {
                id,
                previous_event_id: previous,
                timestamp_ms: self.ctx.now_ms,
                kind,
                details: details(),
            });
        }
        id
    }

    /// Emits an event in `tid`'s thread of control.
    fn emit_in(&mut self, tid: u32, kind: E, details: impl FnOnce() -> Value) -> u64 {
        let previous = self
            .rec
            .rt
            .threads
            .get(&tid)
            .map(|t| t.last_event)
            .unwrap_or(0);
        let id = self.emit(previous, kind, details);
        if let Some(t) = self.rec.rt.threads.get_mut(&tid) {
            t.last_event = id;
        }
        id
    }

    fn arm_timer(&mut self, thread: u32, kind: TimerKind, due_ms: u64) -> u64 {
        let timer = self.rec.rt.next_timer;
        self.rec.rt.next_timer += 1;
        self.rec.rt.timers.insert(
            timer,
            TimerInfo {
                due_ms,
                kind,
                thread,
            },
        );
        self.out.writes.put_timer(&TimerRecord {
            due_ms,
            exec_key: self.rec.key.clone(),
            timer,
        });
        self.out.effects.push(Effect::TimerArmed { timer, due_ms });
        timer
    }

    fn cancel_timer(&mut self, timer: Option<u64>) {
        if let Some(timer) = timer
            && let Some(info) = self.rec.rt.timers.remove(&timer)
        {
            self.out
                .writes
                .delete_timer(info.due_ms, &self.rec.key, timer);
            self.out.effects.push(Effect::TimerCancelled { timer });
        }
    }

    fn exec_input(&mut self) -> Value {
        if self.input_value.is_none() {
            self.input_value = Some(serde_json::from_str(&self.rec.input).unwrap_or(json!({})));
        }
        self.input_value.clone().unwrap_or_default()
    }

    fn context(&mut self, tid: u32, token: Option<&str>) -> Value {
        if !self.ctx.uses_context {
            return Value::Null;
        }
        let input = self.exec_input();
        let Some(t) = self.rec.rt.threads.get(&tid) else {
            return Value::Null;
        };
        let mut ctx = json!({
            "Execution": {
                "Id": self.rec.arn,
                "Input": input,
                "Name": self.rec.name,
                "RoleArn": self.rec.role_arn,
                "StartTime": iso(self.rec.start_ms),
                "RedriveCount": self.rec.redrive_count,
            },
            "State": {
                "Name": t.state,
                "EnteredTime": iso(t.entered_ms),
                "RetryCount": t.retry_counts.iter().sum::<u32>(),
            },
            "StateMachine": { "Id": self.rec.sm_arn, "Name": self.rec.sm_name },
        });
        if let Some(token) = token {
            ctx["Task"] = json!({ "Token": token });
        }
        ctx
    }

    fn state_of(&self, tid: u32) -> Option<&'a State> {
        let root: &'a StateMachine = self.root;
        let t = self.rec.rt.threads.get(&tid)?;
        machine(root, &t.path)?.states.get(&t.state)
    }

    // ---- commands -----------------------------------------------------------------------

    fn command(&mut self, command: Command) {
        match command {
            Command::Start => self.start(),
            Command::WorkerAnswered {
                thread,
                invocation_id,
                result,
            } => self.worker_answered(thread, &invocation_id, result),
            Command::TokenAnswered {
                thread,
                invocation_id,
                result,
            } => {
                if self.task_of(thread, &invocation_id).is_some() {
                    self.task_done(thread, result);
                } else {
                    self.out.unchanged = true;
                }
            }
            Command::ActivityStarted {
                thread,
                invocation_id,
                worker_name,
            } => match self.task_of(thread, &invocation_id) {
                Some(tp) if tp.activity.is_some() => {
                    let (activity, seq) = tp.activity.clone().unwrap_or_default();
                    self.out.writes.delete_activity_queue(&activity, seq);
                    if let Some(Phase::Task(tp)) =
                        self.rec.rt.threads.get_mut(&thread).map(|t| &mut t.phase)
                    {
                        tp.activity = None;
                    }
                    self.emit_in(
                        thread,
                        E::ActivityStarted,
                        || json!({ "workerName": worker_name }),
                    );
                }
                _ => self.out.unchanged = true,
            },
            Command::Heartbeat {
                thread,
                invocation_id,
            } => match self.task_of(thread, &invocation_id) {
                Some(tp) if tp.heartbeat_seconds.is_some() => {
                    let (old, secs) = (tp.heartbeat_timer, tp.heartbeat_seconds.unwrap_or(0));
                    self.cancel_timer(old);
                    let timer =
                        self.arm_timer(thread, TimerKind::Heartbeat, self.ctx.now_ms + secs * 1000);
                    if let Some(Phase::Task(tp)) =
                        self.rec.rt.threads.get_mut(&thread).map(|t| &mut t.phase)
                    {
                        tp.heartbeat_timer = Some(timer);
                    }
                }
                Some(_) => self.out.unchanged = true,
                None => self.out.unchanged = true,
            },
            Command::TimerFired { timer, due_ms } => self.timer_fired(timer, due_ms),
            Command::Stop { error, cause } => {
                if self.rec.status != ExecutionStatus::Running {
                    self.out.unchanged = true;
                    return;
                }
                self.close_with(ExecutionStatus::Aborted, E::ExecutionAborted, error, cause);
            }
            Command::Redrive => self.redrive(),
        }
    }

    fn start(&mut self) {
        let input = self.exec_input();
        let (role, sm_arn) = (self.rec.role_arn.clone(), self.rec.sm_arn.clone());
        let input_text = self.rec.input.clone();
        self.emit(0, E::ExecutionStarted, || {
            json!({
                "input": input_text,
                "roleArn": role,
                "stateMachineArn": sm_arn,
            })
        });
        self.begin_root(self.root.start_at.clone(), input);
    }

    fn begin_root(&mut self, state: String, input: Value) -> u32 {
        if let Some(secs) = self.root.timeout_seconds {
            self.arm_timer(
                0,
                TimerKind::ExecutionTimeout,
                self.ctx.now_ms + secs * 1000,
            );
        }
        let tid = self.new_thread(None, Vec::new(), state, input, self.rec.rt.last_event);
        self.ready.push_back((tid, Run::Enter));
        tid
    }

    fn redrive(&mut self) {
        let Some(point) = self.rec.rt.redrive_from.take() else {
            self.out.unchanged = true;
            return;
        };
        self.rec.status = ExecutionStatus::Running;
        self.rec.redrive_count += 1;
        self.rec.redrive_ms = Some(self.ctx.now_ms);
        self.rec.stop_ms = None;
        self.rec.output = None;
        self.rec.error = None;
        self.rec.cause = None;
        let count = self.rec.redrive_count;
        let last = self.rec.rt.last_event;
        self.emit(
            last,
            E::ExecutionRedriven,
            || json!({ "redriveCount": count }),
        );
        let tid = self.begin_root(point.state, point.input);
        if let Some(t) = self.rec.rt.threads.get_mut(&tid) {
            t.vars_bytes = asl::variables_size(&point.vars);
            t.vars = point.vars;
            t.kept = point.kept;
        }
    }

    fn new_thread(
        &mut self,
        parent: Option<Parent>,
        path: Vec<(String, u32)>,
        state: String,
        input: Value,
        last_event: u64,
    ) -> u32 {
        let tid = self.rec.rt.next_thread;
        self.rec.rt.next_thread += 1;
        self.rec.rt.threads.insert(
            tid,
            Thread {
                parent,
                path,
                state,
                input,
                entered_ms: self.ctx.now_ms,
                last_event,
                retry_counts: Vec::new(),
                phase: Phase::Ready,
                vars: Default::default(),
                kept: Default::default(),
                vars_bytes: 0,
                isolated: false,
            },
        );
        tid
    }

    // ---- running states -----------------------------------------------------------------

    fn run_ready(&mut self) {
        while let Some((tid, run)) = self.ready.pop_front() {
            if self.rec.status != ExecutionStatus::Running {
                break;
            }
            self.run_state(tid, run);
        }
    }

    fn fail_runtime(&mut self, tid: u32, cause: String) {
        self.thread_failed(tid, "States.Runtime".into(), cause);
    }

    fn run_state(&mut self, tid: u32, run: Run) {
        let root = self.root;
        let Some(t) = self.rec.rt.threads.get(&tid) else {
            return;
        };
        let Some(state) = machine(root, &t.path).and_then(|m| m.states.get(&t.state)) else {
            let cause = format!("the state '{}' does not exist in the definition", t.state);
            return self.fail_runtime(tid, cause);
        };
        if run == Run::Enter {
            self.out.states_entered += 1;
            if let Some(t) = self.rec.rt.threads.get_mut(&tid) {
                t.entered_ms = self.ctx.now_ms;
                t.retry_counts.clear();
            }
            if self.ctx.history {
                // The previous state's output text is this state's input text: serialize once.
                let input_text = match self.last_output.take() {
                    Some((t, text)) if t == tid => text,
                    _ => text(&self.rec.rt.threads[&tid].input),
                };
                let name = state.name();
                self.emit_in(
                    tid,
                    entered_kind(state),
                    || json!({ "name": name, "input": input_text }),
                );
            }
        }
        let token = matches!(state, State::Task(_)).then(|| self.ctx.ids.new_id());
        let context = self.context(tid, token.as_deref());
        let mut input = match self.rec.rt.threads.get_mut(&tid) {
            Some(t) => std::mem::take(&mut t.input),
            None => return,
        };
        let vars = ThreadVars {
            threads: &self.rec.rt.threads,
            tid,
        };
        // A Pass that goes on to another state and assigns nothing moves its input into its
        // output: nothing after it can fail. Every other state gives the input back to its
        // thread, since the execution can still fail after it (an output over the size limit,
        // variables over theirs) and a redrive starts again from this state's input.
        let scope = Scope::new(&context, &vars);
        let moves = matches!(state, State::Pass(pass)
            if matches!(pass.transition, asl::Transition::Next(_)) && pass.assign.is_none());
        let entered = if moves {
            asl::enter_mut(state, &mut input, &scope, &mut self.env)
        } else {
            asl::enter(state, &input, &scope, &mut self.env)
        };
        if !(moves && matches!(entered, Ok(Entered::Next { .. })))
            && let Some(t) = self.rec.rt.threads.get_mut(&tid)
        {
            t.input = input;
        }
        match entered {
            Ok(Entered::Next {
                next,
                output,
                assigned,
            }) => self.go_next(tid, state, next, output, assigned),
            Ok(Entered::End { output, assigned }) => {
                if self.assign(tid, &assigned) {
                    self.exit_state(tid, state, &output, &assigned);
                    self.thread_succeeded(tid, output);
                }
            }
            Ok(Entered::Fail { error, cause }) => {
                self.thread_failed(tid, error.unwrap_or_default(), cause.unwrap_or_default())
            }
            Ok(Entered::Task {
                resource,
                parameters,
                timeout_seconds,
                heartbeat_seconds,
                ..
            }) => self.schedule_task(
                tid,
                state,
                token.unwrap_or_default(),
                &resource,
                parameters,
                timeout_seconds,
                heartbeat_seconds,
            ),
            Ok(Entered::Wait { until }) => {
                let entered = self.rec.rt.threads[&tid].entered_ms;
                let due = match until {
                    WaitUntil::Seconds(s) => entered.saturating_add(s.saturating_mul(1000)),
                    WaitUntil::Timestamp(at) => at.timestamp_millis().max(0) as u64,
                };
                let timer = self.arm_timer(tid, TimerKind::Wait, due);
                self.set_phase(tid, Phase::Waiting { timer });
            }
            Ok(Entered::Parallel { input }) => {
                let State::Parallel(p) = state else { return };
                let started = self.emit_in(tid, E::ParallelStateStarted, || Value::Null);
                let path = self.rec.rt.threads[&tid].path.clone();
                // Branches that succeeded before a redrive are not run again.
                let kept = self
                    .rec
                    .rt
                    .threads
                    .get_mut(&tid)
                    .map(|t| std::mem::take(&mut t.kept))
                    .unwrap_or_default();
                let mut results = vec![Value::Null; p.branches.len()];
                let mut children = Vec::with_capacity(p.branches.len());
                for (i, branch) in p.branches.iter().enumerate() {
                    if let Some(output) = kept.get(&(i as u32)) {
                        results[i] = output.clone();
                        children.push(None);
                        continue;
                    }
                    let mut child_path = path.clone();
                    child_path.push((p.name.clone(), i as u32));
                    let child = self.new_thread(
                        Some(Parent {
                            thread: tid,
                            slot: i as u32,
                        }),
                        child_path,
                        branch.start_at.clone(),
                        input.clone(),
                        started,
                    );
                    children.push(Some(child));
                    self.ready.push_back((child, Run::Enter));
                }
                let remaining = children.iter().filter(|c| c.is_some()).count() as u32;
                self.set_phase(
                    tid,
                    Phase::Parallel(ParallelPhase {
                        results,
                        children,
                        remaining,
                        last_event: started,
                    }),
                );
                if remaining == 0 {
                    self.parallel_done(tid);
                }
            }
            Ok(Entered::Map {
                items,
                effective_input,
                max_concurrency,
                tolerated_failure_percentage,
                tolerated_failure_count,
            }) => {
                let length = items.len();
                let started = self.emit_in(tid, E::MapStateStarted, || json!({ "length": length }));
                // Iterations that succeeded before a redrive are not run again.
                let kept = self
                    .rec
                    .rt
                    .threads
                    .get_mut(&tid)
                    .map(|t| std::mem::take(&mut t.kept))
                    .unwrap_or_default();
                let mut results = vec![Value::Null; length];
                let mut done = std::collections::BTreeSet::new();
                for (i, output) in kept {
                    if let Some(slot) = results.get_mut(i as usize) {
                        *slot = output;
                        done.insert(i);
                    }
                }
                self.set_phase(
                    tid,
                    Phase::Map(MapPhase {
                        results,
                        items,
                        effective_input,
                        next: 0,
                        running: Default::default(),
                        succeeded: done.len() as u32,
                        done,
                        failed: 0,
                        max_concurrency,
                        tolerated_percentage: tolerated_failure_percentage,
                        tolerated_count: tolerated_failure_count,
                        last_event: started,
                    }),
                );
                self.map_progress(tid);
            }
            Err(e) => self.state_error(tid, e),
        }
    }

    fn set_phase(&mut self, tid: u32, phase: Phase) {
        if let Some(t) = self.rec.rt.threads.get_mut(&tid) {
            t.phase = phase;
        }
    }

    fn exit_state(&mut self, tid: u32, state: &State, output: &Value, assigned: &Vars) {
        if !self.ctx.history {
            return;
        }
        if let Some(kind) = exited_kind(state) {
            let out = text(output);
            self.last_output = Some((tid, out.clone()));
            let name = state.name();
            self.emit_in(tid, kind, || {
                let mut details = json!({ "name": name, "output": out });
                if !assigned.is_empty() {
                    // AWS shows each assigned value as JSON text.
                    let vars: serde_json::Map<String, Value> = assigned
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(text(v))))
                        .collect();
                    details["assignedVariables"] = Value::Object(vars);
                    details["assignedVariablesDetails"] = json!({ "truncated": false });
                }
                details
            });
        }
    }

    /// Sets the variables a state assigned in its thread's scope. False (and the thread
    /// failed with `States.Runtime`) when the execution's variables would pass 10 MiB.
    fn assign(&mut self, tid: u32, assigned: &Vars) -> bool {
        if assigned.is_empty() {
            return true;
        }
        let Some(t) = self.rec.rt.threads.get(&tid) else {
            return false;
        };
        let mut bytes = t.vars_bytes;
        for (name, value) in assigned {
            let old = t.vars.get(name).map_or(0, |v| asl::variable_size(name, v));
            bytes = (bytes + asl::variable_size(name, value)).saturating_sub(old);
        }
        let all: usize = self.rec.rt.threads.values().map(|t| t.vars_bytes).sum();
        let total = all - t.vars_bytes + bytes;
        // Checked before anything is stored: a failed assignment leaves the variables as they
        // were when the state was entered, which is what a redrive starts from.
        if total > asl::MAX_TOTAL_VARIABLE_BYTES {
            let cause = format!(
                "The execution's variables are {total} bytes, more than the {} bytes (10 MiB) an execution may hold",
                asl::MAX_TOTAL_VARIABLE_BYTES
            );
            self.fail_runtime(tid, cause);
            return false;
        }
        if let Some(t) = self.rec.rt.threads.get_mut(&tid) {
            t.vars_bytes = bytes;
            t.vars
                .extend(assigned.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        true
    }

    fn go_next(&mut self, tid: u32, state: &State, next: String, output: Value, assigned: Vars) {
        if !self.assign(tid, &assigned) {
            return;
        }
        self.exit_state(tid, state, &output, &assigned);
        if let Some(t) = self.rec.rt.threads.get_mut(&tid) {
            t.kept.clear();
            t.state = next;
            t.input = output;
            t.phase = Phase::Ready;
        }
        self.ready.push_back((tid, Run::Enter));
    }

    /// The work of a Task, Parallel, Map or Wait state produced `result`.
    fn complete_work(&mut self, tid: u32, result: Value) {
        self.last_output = None;
        let Some(state) = self.state_of(tid) else {
            return;
        };
        let context = self.context(tid, None);
        let input = self.rec.rt.threads[&tid].input.clone();
        self.set_phase(tid, Phase::Ready);
        let vars = ThreadVars {
            threads: &self.rec.rt.threads,
            tid,
        };
        match asl::complete(
            state,
            &input,
            result,
            &Scope::new(&context, &vars),
            &mut self.env,
        ) {
            Ok(Completed::Next {
                next,
                output,
                assigned,
            }) => self.go_next(tid, state, next, output, assigned),
            Ok(Completed::End { output, assigned }) => {
                if self.assign(tid, &assigned) {
                    self.exit_state(tid, state, &output, &assigned);
                    self.thread_succeeded(tid, output);
                }
            }
            Err(e) => self.state_error(tid, e),
        }
    }

    fn state_error(&mut self, tid: u32, error: StatesError) {
        let Some(state) = self.state_of(tid) else {
            return;
        };
        let Some(t) = self.rec.rt.threads.get(&tid) else {
            return;
        };
        let (input, counts) = (t.input.clone(), t.retry_counts.clone());
        if error.error == ErrorName::QueryEvaluationError {
            // AWS records a failed JSONata evaluation as its own event, naming the field.
            let location = error
                .cause
                .split_once("specified for the field '")
                .and_then(|(_, rest)| rest.split_once('\''))
                .map(|(field, _)| field.to_owned());
            let (name, cause) = (state.name(), error.cause.clone());
            self.emit_in(tid, E::EvaluationFailed, || {
                let mut details = json!({
                    "state": name,
                    "error": "States.QueryEvaluationError",
                    "cause": cause,
                });
                if let Some(location) = location {
                    details["location"] = json!(location);
                }
                details
            });
        }
        let context = self.context(tid, None);
        let vars = ThreadVars {
            threads: &self.rec.rt.threads,
            tid,
        };
        let scope = Scope::new(&context, &vars);
        match asl::on_error(state, &input, &error, &counts, &scope, &mut self.env) {
            ErrorOutcome::Retry { retrier, delay_ms } => {
                if let Some(t) = self.rec.rt.threads.get_mut(&tid) {
                    // A retried Parallel or Map runs every branch or iteration again.
                    t.kept.clear();
                    if t.retry_counts.len() <= retrier {
                        t.retry_counts.resize(retrier + 1, 0);
                    }
                    t.retry_counts[retrier] += 1;
                }
                if delay_ms == 0 {
                    self.set_phase(tid, Phase::Ready);
                    self.ready.push_back((tid, Run::Retry));
                } else {
                    let timer = self.arm_timer(
                        tid,
                        TimerKind::Retry,
                        self.ctx.now_ms.saturating_add(delay_ms),
                    );
                    self.set_phase(tid, Phase::Retrying { timer });
                }
            }
            ErrorOutcome::Catch {
                next,
                output,
                assigned,
            } => {
                if !self.assign(tid, &assigned) {
                    return;
                }
                if let Some(t) = self.rec.rt.threads.get_mut(&tid) {
                    t.kept.clear();
                    t.state = next;
                    t.input = output;
                    t.phase = Phase::Ready;
                }
                self.ready.push_back((tid, Run::Enter));
            }
            ErrorOutcome::Fail => {
                self.thread_failed(tid, error.error.as_str().to_string(), error.cause)
            }
        }
    }

    // ---- ends of threads ----------------------------------------------------------------

    fn thread_succeeded(&mut self, tid: u32, output: Value) {
        let Some(t) = self.rec.rt.threads.remove(&tid) else {
            return;
        };
        match t.parent {
            None => {
                let text_out = text(&output);
                if text_out.len() > self.ctx.max_payload_bytes {
                    self.rec.rt.threads.insert(tid, t);
                    return self.thread_failed(tid, "States.DataLimitExceeded".into(), format!("The state/task returned a result with a size exceeding the maximum number of bytes service limit ({} bytes).", self.ctx.max_payload_bytes));
                }
                let last = t.last_event;
                let out2 = text_out.clone();
                self.emit(last, E::ExecutionSucceeded, || json!({ "output": out2 }));
                self.rec.output = Some(text_out);
                self.finish(ExecutionStatus::Succeeded);
            }
            Some(Parent { thread: p, slot }) => {
                let last = t.last_event;
                let map_name = self
                    .rec
                    .rt
                    .threads
                    .get(&p)
                    .map(|t| t.state.clone())
                    .unwrap_or_default();
                match self.rec.rt.threads.get_mut(&p).map(|t| &mut t.phase) {
                    Some(Phase::Parallel(pp)) => {
                        pp.results[slot as usize] = output;
                        pp.children[slot as usize] = None;
                        pp.remaining -= 1;
                        pp.last_event = last;
                        if pp.remaining == 0 {
                            self.parallel_done(p);
                        }
                    }
                    Some(Phase::Map(_)) => {
                        let id = self.emit(
                            last,
                            E::MapIterationSucceeded,
                            || json!({ "name": map_name, "index": slot }),
                        );
                        if let Some(Phase::Map(mp)) =
                            self.rec.rt.threads.get_mut(&p).map(|t| &mut t.phase)
                        {
                            mp.results[slot as usize] = output;
                            mp.running.remove(&slot);
                            mp.succeeded += 1;
                            mp.done.insert(slot);
                            mp.last_event = id;
                        }
                        self.map_progress(p);
                    }
                    _ => {}
                }
            }
        }
    }

    fn parallel_done(&mut self, p: u32) {
        let Some(Phase::Parallel(pp)) = self.rec.rt.threads.get_mut(&p).map(|t| &mut t.phase)
        else {
            return;
        };
        let results = std::mem::take(&mut pp.results);
        let last = pp.last_event;
        let id = self.emit(last, E::ParallelStateSucceeded, || Value::Null);
        if let Some(t) = self.rec.rt.threads.get_mut(&p) {
            t.last_event = id;
        }
        self.complete_work(p, Value::Array(results));
    }

    fn map_progress(&mut self, p: u32) {
        loop {
            let Some(t) = self.rec.rt.threads.get(&p) else {
                return;
            };
            let Phase::Map(mp) = &t.phase else { return };
            let total = mp.items.len() as u32;
            if mp.next < total
                && (mp.max_concurrency == 0 || (mp.running.len() as u32) < mp.max_concurrency)
            {
                let index = mp.next;
                if mp.done.contains(&index) {
                    // Kept from before a redrive: it is not run again.
                    if let Some(Phase::Map(mp)) =
                        self.rec.rt.threads.get_mut(&p).map(|t| &mut t.phase)
                    {
                        mp.next += 1;
                    }
                    continue;
                }
                self.launch_iteration(p, index);
                continue;
            }
            if mp.next >= total && mp.running.is_empty() {
                let (results, last) = (mp.results.clone(), mp.last_event);
                let id = self.emit(last, E::MapStateSucceeded, || Value::Null);
                if let Some(t) = self.rec.rt.threads.get_mut(&p) {
                    t.last_event = id;
                }
                self.complete_work(p, Value::Array(results));
            }
            return;
        }
    }

    fn launch_iteration(&mut self, p: u32, index: u32) {
        let Some(state) = self.state_of(p) else {
            return;
        };
        let State::Map(map) = state else { return };
        let context = self.context(p, None);
        let t = &self.rec.rt.threads[&p];
        let Phase::Map(mp) = &t.phase else { return };
        let (item, effective) = (mp.items[index as usize].clone(), mp.effective_input.clone());
        let mut path = t.path.clone();
        path.push((map.name.clone(), 0));
        let last = mp.last_event;
        let map_name = map.name.clone();
        let vars = ThreadVars {
            threads: &self.rec.rt.threads,
            tid: p,
        };
        let distributed = map.processor_config.mode == ProcessorMode::Distributed;
        match asl::map_item_input(
            state,
            &effective,
            &item,
            index as usize,
            &Scope::new(&context, &vars),
            &mut self.env,
        ) {
            Ok(input) => {
                let id = self.emit(
                    last,
                    E::MapIterationStarted,
                    || json!({ "name": map_name, "index": index }),
                );
                let child = self.new_thread(
                    Some(Parent {
                        thread: p,
                        slot: index,
                    }),
                    path,
                    map.item_processor.start_at.clone(),
                    input,
                    id,
                );
                if distributed && let Some(t) = self.rec.rt.threads.get_mut(&child) {
                    t.isolated = true;
                }
                if let Some(Phase::Map(mp)) = self.rec.rt.threads.get_mut(&p).map(|t| &mut t.phase)
                {
                    mp.next = index + 1;
                    mp.running.insert(index, child);
                    mp.last_event = id;
                }
                self.ready.push_back((child, Run::Enter));
            }
            Err(e) => {
                self.abort_children(p);
                let id = self.emit(last, E::MapStateFailed, || Value::Null);
                if let Some(t) = self.rec.rt.threads.get_mut(&p) {
                    t.last_event = id;
                    t.phase = Phase::Ready;
                }
                self.state_error(p, e);
            }
        }
    }

    fn thread_failed(&mut self, tid: u32, error: String, cause: String) {
        let Some(t) = self.rec.rt.threads.get(&tid) else {
            return;
        };
        match t.parent.clone() {
            None => {
                self.rec.rt.redrive_from = Some(RedrivePoint {
                    state: t.state.clone(),
                    input: t.input.clone(),
                    vars: t.vars.clone(),
                    kept: t.kept.clone(),
                });
                let last = t.last_event;
                self.rec.rt.threads.remove(&tid);
                let (e2, c2) = (error.clone(), cause.clone());
                self.emit(
                    last,
                    E::ExecutionFailed,
                    || json!({ "error": e2, "cause": c2 }),
                );
                self.rec.error = Some(error);
                self.rec.cause = Some(cause);
                self.finish(ExecutionStatus::Failed);
            }
            Some(Parent { thread: p, slot }) => {
                let last = t.last_event;
                self.abort_thread(tid, false);
                let parent_name = self
                    .rec
                    .rt
                    .threads
                    .get(&p)
                    .map(|t| t.state.clone())
                    .unwrap_or_default();
                let states_error = StatesError::new(ErrorName::from(error.as_str()), cause.clone());
                match self.rec.rt.threads.get(&p).map(|t| &t.phase) {
                    Some(Phase::Parallel(pp)) => {
                        let mut kept = BTreeMap::new();
                        for (i, child) in pp.children.iter().enumerate() {
                            if child.is_none() {
                                kept.insert(i as u32, pp.results[i].clone());
                            }
                        }
                        self.abort_children(p);
                        let id = self.emit(last, E::ParallelStateFailed, || Value::Null);
                        if let Some(t) = self.rec.rt.threads.get_mut(&p) {
                            t.last_event = id;
                            t.phase = Phase::Ready;
                            t.kept = kept;
                        }
                        self.state_error(p, states_error);
                    }
                    Some(Phase::Map(_)) => {
                        let id = self.emit(
                            last,
                            E::MapIterationFailed,
                            || json!({ "name": parent_name, "index": slot }),
                        );
                        let Some(Phase::Map(mp)) =
                            self.rec.rt.threads.get_mut(&p).map(|t| &mut t.phase)
                        else {
                            return;
                        };
                        mp.running.remove(&slot);
                        mp.failed += 1;
                        mp.last_event = id;
                        mp.results[slot as usize] = json!({ "Error": error, "Cause": cause });
                        let total = mp.items.len().max(1) as f64;
                        let thresholds =
                            mp.tolerated_count.is_some() || mp.tolerated_percentage.is_some();
                        let over_count = match mp.tolerated_count {
                            Some(n) => mp.failed as u64 > n,
                            None => true,
                        };
                        let over_pct = match mp.tolerated_percentage {
                            Some(pct) => mp.failed as f64 * 100.0 / total > pct,
                            None => true,
                        };
                        if over_count && over_pct {
                            let kept = self
                                .rec
                                .rt
                                .threads
                                .get(&p)
                                .map(|t| succeeded_children(&t.phase))
                                .unwrap_or_default();
                            self.abort_children(p);
                            let id = self.emit(id, E::MapStateFailed, || Value::Null);
                            if let Some(t) = self.rec.rt.threads.get_mut(&p) {
                                t.last_event = id;
                                t.phase = Phase::Ready;
                                t.kept = kept;
                            }
                            let err = if thresholds {
                                StatesError::new(
                                    ErrorName::ExceedToleratedFailureThreshold,
                                    "The specified tolerated failure threshold was exceeded",
                                )
                            } else {
                                states_error
                            };
                            self.state_error(p, err);
                        } else {
                            self.map_progress(p);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Aborts every running child thread of a Parallel or Map thread `p`.
    fn abort_children(&mut self, p: u32) {
        let children: Vec<(u32, u32)> = match self.rec.rt.threads.get(&p).map(|t| &t.phase) {
            Some(Phase::Parallel(pp)) => pp
                .children
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.map(|c| (i as u32, c)))
                .collect(),
            Some(Phase::Map(mp)) => mp.running.iter().map(|(i, c)| (*i, *c)).collect(),
            _ => Vec::new(),
        };
        let is_map = matches!(
            self.rec.rt.threads.get(&p).map(|t| &t.phase),
            Some(Phase::Map(_))
        );
        let name = self
            .rec
            .rt
            .threads
            .get(&p)
            .map(|t| t.state.clone())
            .unwrap_or_default();
        for (slot, child) in children {
            let last = self
                .rec
                .rt
                .threads
                .get(&child)
                .map(|t| t.last_event)
                .unwrap_or(0);
            self.abort_thread(child, true);
            if is_map {
                let name = name.clone();
                self.emit(
                    last,
                    E::MapIterationAborted,
                    || json!({ "name": name, "index": slot }),
                );
            }
        }
        match self.rec.rt.threads.get_mut(&p).map(|t| &mut t.phase) {
            Some(Phase::Parallel(pp)) => pp.children.iter_mut().for_each(|c| *c = None),
            Some(Phase::Map(mp)) => mp.running.clear(),
            _ => {}
        }
    }

    /// Removes a thread and everything it holds open (timers, tokens, dispatches, children),
    /// writing `*StateAborted` when `events`.
    fn abort_thread(&mut self, tid: u32, events: bool) {
        let Some(phase) = self.rec.rt.threads.get(&tid).map(|t| t.phase.clone()) else {
            return;
        };
        let kind = match phase {
            Phase::Task(tp) => {
                self.release_task(&tp);
                Some(E::TaskStateAborted)
            }
            Phase::Waiting { timer } => {
                self.cancel_timer(Some(timer));
                Some(E::WaitStateAborted)
            }
            Phase::Retrying { timer } => {
                self.cancel_timer(Some(timer));
                None
            }
            Phase::Parallel(_) => {
                self.abort_children(tid);
                Some(E::ParallelStateAborted)
            }
            Phase::Map(_) => {
                self.abort_children(tid);
                Some(E::MapStateAborted)
            }
            Phase::Ready => None,
        };
        if events && let Some(kind) = kind {
            self.emit_in(tid, kind, || Value::Null);
        }
        self.rec.rt.threads.remove(&tid);
    }

    /// Closes a running execution from outside (stop, execution timeout).
    fn close_with(
        &mut self,
        status: ExecutionStatus,
        kind: E,
        error: Option<String>,
        cause: Option<String>,
    ) {
        if let Some(root) = self
            .rec
            .rt
            .threads
            .iter()
            .find(|(_, t)| t.parent.is_none())
            .map(|(id, t)| {
                let kept = succeeded_children(&t.phase);
                (*id, t.state.clone(), t.input.clone(), t.vars.clone(), kept)
            })
        {
            self.rec.rt.redrive_from = Some(RedrivePoint {
                state: root.1,
                input: root.2,
                vars: root.3,
                kept: root.4,
            });
            self.abort_thread(root.0, true);
        }
        let last = self.rec.rt.last_event;
        let (e2, c2) = (error.clone(), cause.clone());
        self.emit(last, kind, || {
            let mut d = serde_json::Map::new();
            if let Some(e) = e2 {
                d.insert("error".into(), json!(e));
            }
            if let Some(c) = c2 {
                d.insert("cause".into(), json!(c));
            }
            Value::Object(d)
        });
        self.rec.error = error;
        self.rec.cause = cause;
        self.finish(status);
    }

    fn finish(&mut self, status: ExecutionStatus) {
        self.rec.status = status;
        self.rec.stop_ms = Some(self.ctx.now_ms);
        let open: Vec<u32> = self.rec.rt.threads.keys().copied().collect();
        for tid in open {
            self.abort_thread(tid, false);
        }
        let timers: Vec<u64> = self.rec.rt.timers.keys().copied().collect();
        for timer in timers {
            self.cancel_timer(Some(timer));
        }
        if status == ExecutionStatus::Succeeded {
            self.rec.rt.redrive_from = None;
        }
        self.ready.clear();
        self.out.effects.push(Effect::Finished);
    }

    // ---- tasks ----------------------------------------------------------------------------

    fn task_of(&self, thread: u32, invocation_id: &str) -> Option<&TaskPhase> {
        match self.rec.rt.threads.get(&thread).map(|t| &t.phase) {
            Some(Phase::Task(tp)) if tp.invocation_id == invocation_id => Some(tp),
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn schedule_task(
        &mut self,
        tid: u32,
        state: &State,
        token: String,
        resource: &str,
        parameters: Value,
        timeout: Option<u64>,
        heartbeat: Option<u64>,
    ) {
        let plan = plan_resource(resource, parameters, self.ctx.scope);
        let invocation_id = self.ctx.ids.new_id();
        let attempt: u32 = self.rec.rt.threads[&tid].retry_counts.iter().sum();
        let region = self.ctx.scope.region.clone();
        let params_text = text(&plan.input);
        match plan.family {
            TaskFamily::Activity => {
                self.emit_in(tid, E::ActivityScheduled, || {
                    let mut d = json!({ "resource": resource, "input": params_text });
                    if let Some(t) = timeout {
                        d["timeoutInSeconds"] = json!(t);
                    }
                    if let Some(h) = heartbeat {
                        d["heartbeatInSeconds"] = json!(h);
                    }
                    d
                });
            }
            TaskFamily::Lambda => {
                self.emit_in(tid, E::LambdaFunctionScheduled, || {
                    let mut d = json!({ "resource": resource, "input": params_text });
                    if let Some(t) = timeout {
                        d["timeoutInSeconds"] = json!(t);
                    }
                    d
                });
                self.emit_in(tid, E::LambdaFunctionStarted, || Value::Null);
            }
            TaskFamily::Task => {
                let (rt, rn) = (plan.resource_type.clone(), plan.resource_name.clone());
                let (rt2, rn2) = (rt.clone(), rn.clone());
                self.emit_in(tid, E::TaskScheduled, || {
                    let mut d = json!({ "resourceType": rt, "resource": rn, "region": region, "parameters": params_text });
                    if let Some(t) = timeout { d["timeoutInSeconds"] = json!(t); }
                    if let Some(h) = heartbeat { d["heartbeatInSeconds"] = json!(h); }
                    d
                });
                self.emit_in(
                    tid,
                    E::TaskStarted,
                    || json!({ "resourceType": rt2, "resource": rn2 }),
                );
            }
        }
        let now = self.ctx.now_ms;
        let timeout_timer = timeout
            .map(|s| self.arm_timer(tid, TimerKind::TaskTimeout, now + s.saturating_mul(1000)));
        let takes_token = plan.kind != TaskKind::Call;
        let heartbeat_seconds = if takes_token { heartbeat } else { None };
        let heartbeat_timer = heartbeat_seconds
            .map(|s| self.arm_timer(tid, TimerKind::Heartbeat, now + s.saturating_mul(1000)));
        let exec_key = self.rec.key.clone();
        if takes_token {
            self.out.writes.put_token(
                &token,
                &TokenRecord {
                    exec_key: exec_key.clone(),
                    thread: tid,
                    invocation_id: invocation_id.clone(),
                },
            );
        }
        let mut activity = None;
        if let Some(name) = &plan.activity {
            let seq = (self.ctx.next_seq)();
            let entry = ActivityQueueRecord {
                activity: name.clone(),
                seq,
                token: token.clone(),
                input: text(&plan.input),
                exec_key: exec_key.clone(),
                thread: tid,
                invocation_id: invocation_id.clone(),
            };
            self.out.writes.put_activity_queue(&entry);
            self.out.effects.push(Effect::EnqueueActivity(entry));
            activity = Some((name.clone(), seq));
        } else {
            let dispatch = DispatchRecord {
                exec_key,
                exec_arn: self.rec.arn.clone(),
                thread: tid,
                invocation_id: invocation_id.clone(),
                resource: plan.worker_resource.clone(),
                function_name: plan.function_name.clone(),
                input: plan.input.clone(),
                token: takes_token.then(|| token.clone()),
                timeout_seconds: timeout,
                heartbeat_seconds,
                state_name: state.name().to_string(),
                attempt,
                kind: plan.kind,
                wrap_lambda_invoke: plan.wrap_lambda_invoke,
            };
            self.out.writes.put_dispatch(&dispatch);
            self.out.effects.push(Effect::Dispatch(dispatch));
        }
        self.set_phase(
            tid,
            Phase::Task(TaskPhase {
                invocation_id,
                token: takes_token.then_some(token),
                kind: plan.kind,
                family: plan.family,
                resource: resource.to_string(),
                resource_type: plan.resource_type,
                resource_name: plan.resource_name,
                attempt,
                timeout_timer,
                heartbeat_timer,
                heartbeat_seconds,
                activity,
                submitted: false,
            }),
        );
    }

    /// Drops what a task holds open: timers, token, dispatch record, activity queue entry.
    fn release_task(&mut self, tp: &TaskPhase) {
        self.cancel_timer(tp.timeout_timer);
        self.cancel_timer(tp.heartbeat_timer);
        if let Some(token) = &tp.token {
            self.out.writes.delete_token(token);
        }
        if !tp.submitted && tp.kind != TaskKind::Activity {
            self.out
                .writes
                .delete_dispatch(&self.rec.key, &tp.invocation_id);
        }
        if let Some((activity, seq)) = &tp.activity {
            self.out.writes.delete_activity_queue(activity, *seq);
        }
    }

    fn worker_answered(
        &mut self,
        thread: u32,
        invocation_id: &str,
        result: Result<Value, TaskError>,
    ) {
        let Some(tp) = self.task_of(thread, invocation_id).cloned() else {
            self.out.unchanged = true;
            return;
        };
        if tp.kind == TaskKind::Callback && !tp.submitted {
            match result {
                Ok(output) => {
                    self.out
                        .writes
                        .delete_dispatch(&self.rec.key, invocation_id);
                    if let Some(Phase::Task(tp)) =
                        self.rec.rt.threads.get_mut(&thread).map(|t| &mut t.phase)
                    {
                        tp.submitted = true;
                    }
                    let (rt, rn) = (tp.resource_type.clone(), tp.resource_name.clone());
                    self.emit_in(
                        thread,
                        E::TaskSubmitted,
                        || json!({ "resourceType": rt, "resource": rn, "output": text(&output) }),
                    );
                }
                Err(e) => self.task_done(thread, Err(e)),
            }
            return;
        }
        if tp.kind == TaskKind::Callback {
            self.out.unchanged = true;
            return;
        }
        self.task_done(thread, result);
    }

    fn task_done(&mut self, thread: u32, result: Result<Value, TaskError>) {
        let Some(Phase::Task(tp)) = self.rec.rt.threads.get(&thread).map(|t| t.phase.clone())
        else {
            return;
        };
        self.release_task(&tp);
        self.set_phase(thread, Phase::Ready);
        let result = match result {
            Ok(v) if text(&v).len() > self.ctx.max_payload_bytes => Err(TaskError::new(
                "States.DataLimitExceeded",
                format!(
                    "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit ({} bytes).",
                    tp.resource, self.ctx.max_payload_bytes
                ),
            )),
            other => other,
        };
        let (rt, rn) = (tp.resource_type.clone(), tp.resource_name.clone());
        let request_id = lambda_request_id(&tp);
        match result {
            Ok(value) => {
                let value =
                    if matches!(tp.family, TaskFamily::Task) && rt == "lambda" && rn == "invoke" {
                        json!({ "ExecutedVersion": "$LATEST", "Payload": value, "StatusCode": 200 })
                    } else {
                        value
                    };
                let out = text(&value);
                match tp.family {
                    TaskFamily::Task => self.emit_in(thread, E::TaskSucceeded, || {
                        with_request_id(
                            json!({ "resourceType": rt, "resource": rn, "output": out }),
                            request_id,
                        )
                    }),
                    TaskFamily::Lambda => self.emit_in(thread, E::LambdaFunctionSucceeded, || {
                        with_request_id(json!({ "output": out }), request_id)
                    }),
                    TaskFamily::Activity => {
                        self.emit_in(thread, E::ActivitySucceeded, || json!({ "output": out }))
                    }
                };
                self.complete_work(thread, value);
            }
            Err(e) => {
                let (error, cause) = (e.error.clone(), e.cause.clone());
                match tp.family {
                    TaskFamily::Task => self.emit_in(thread, E::TaskFailed, || with_request_id(json!({ "resourceType": rt, "resource": rn, "error": error, "cause": cause }), request_id)),
                    TaskFamily::Lambda => self.emit_in(thread, E::LambdaFunctionFailed, || with_request_id(json!({ "error": error, "cause": cause }), request_id)),
                    TaskFamily::Activity => self.emit_in(thread, E::ActivityFailed, || json!({ "error": error, "cause": cause })),
                };
                self.state_error(
                    thread,
                    StatesError::new(ErrorName::from(e.error.as_str()), e.cause),
                );
            }
        }
    }

    fn task_timed_out(&mut self, thread: u32, error: ErrorName) {
        let Some(Phase::Task(tp)) = self.rec.rt.threads.get(&thread).map(|t| t.phase.clone())
        else {
            return;
        };
        self.release_task(&tp);
        self.set_phase(thread, Phase::Ready);
        let (e, c) = (error.as_str().to_string(), String::new());
        let (rt, rn) = (tp.resource_type.clone(), tp.resource_name.clone());
        let request_id = lambda_request_id(&tp);
        match tp.family {
            TaskFamily::Task => self.emit_in(thread, E::TaskTimedOut, || {
                with_request_id(
                    json!({ "resourceType": rt, "resource": rn, "error": e, "cause": c }),
                    request_id,
                )
            }),
            TaskFamily::Lambda => self.emit_in(thread, E::LambdaFunctionTimedOut, || {
                with_request_id(json!({ "error": e, "cause": c }), request_id)
            }),
            TaskFamily::Activity => self.emit_in(
                thread,
                E::ActivityTimedOut,
                || json!({ "error": e, "cause": c }),
            ),
        };
        self.state_error(thread, StatesError::new(error, String::new()));
    }

    fn timer_fired(&mut self, timer: u64, due_ms: u64) {
        let Some(info) = self.rec.rt.timers.remove(&timer) else {
            // Already cancelled or fired: the key may still be there if the cancel raced the scan.
            self.out.writes.delete_timer(due_ms, &self.rec.key, timer);
            self.out.unchanged = true;
            return;
        };
        self.out
            .writes
            .delete_timer(info.due_ms, &self.rec.key, timer);
        if self.rec.status != ExecutionStatus::Running {
            return;
        }
        let tid = info.thread;
        match info.kind {
            TimerKind::ExecutionTimeout => {
                self.close_with(
                    ExecutionStatus::TimedOut,
                    E::ExecutionTimedOut,
                    Some("States.Timeout".into()),
                    Some("The execution timed out (TimeoutSeconds of the state machine).".into()),
                );
            }
            TimerKind::Wait => {
                if matches!(self.rec.rt.threads.get(&tid).map(|t| &t.phase), Some(Phase::Waiting { timer: t }) if *t == timer)
                {
                    self.complete_work(tid, Value::Null);
                }
            }
            TimerKind::Retry => {
                if matches!(self.rec.rt.threads.get(&tid).map(|t| &t.phase), Some(Phase::Retrying { timer: t }) if *t == timer)
                {
                    self.set_phase(tid, Phase::Ready);
                    self.ready.push_back((tid, Run::Retry));
                }
            }
            TimerKind::TaskTimeout => {
                if matches!(self.rec.rt.threads.get(&tid).map(|t| &t.phase), Some(Phase::Task(tp)) if tp.timeout_timer == Some(timer))
                {
                    if let Some(Phase::Task(tp)) =
                        self.rec.rt.threads.get_mut(&tid).map(|t| &mut t.phase)
                    {
                        tp.timeout_timer = None;
                    }
                    self.task_timed_out(tid, ErrorName::Timeout);
                }
            }
            TimerKind::Heartbeat => {
                if matches!(self.rec.rt.threads.get(&tid).map(|t| &t.phase), Some(Phase::Task(tp)) if tp.heartbeat_timer == Some(timer))
                {
                    if let Some(Phase::Task(tp)) =
                        self.rec.rt.threads.get_mut(&tid).map(|t| &mut t.phase)
                    {
                        tp.heartbeat_timer = None;
                    }
                    self.task_timed_out(tid, ErrorName::HeartbeatTimeout);
                }
            }
        }
    }
}

/// The Lambda request id of a function call (the engine's invocation id, which the functions
/// worker uses as the request id): `/v1/functions/{name}/invocations/{requestId}/logs`.
fn lambda_request_id(tp: &TaskPhase) -> Option<String> {
    let is_lambda = match tp.family {
        TaskFamily::Lambda => true,
        TaskFamily::Task => tp.resource_type == "lambda" && tp.resource_name == "invoke",
        TaskFamily::Activity => false,
    };
    is_lambda.then(|| tp.invocation_id.clone())
}

/// Adds `requestId` (a Stepyard extension: AWS has no field for it) to a function's
/// completion details, so the history links to the invocation's logs.
fn with_request_id(mut details: Value, request_id: Option<String>) -> Value {
    if let Some(id) = request_id {
        details["requestId"] = json!(id);
    }
    details
}

/// The outputs of a Parallel's finished branches or a Map's succeeded iterations, by index.
fn succeeded_children(phase: &Phase) -> BTreeMap<u32, Value> {
    match phase {
        Phase::Parallel(pp) => pp
            .children
            .iter()
            .enumerate()
            .filter(|(_, child)| child.is_none())
            .map(|(i, _)| (i as u32, pp.results[i].clone()))
            .collect(),
        Phase::Map(mp) => mp
            .done
            .iter()
            .map(|i| (*i, mp.results[*i as usize].clone()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    //! The transition function on canned inputs: no store, no runtime.

    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    struct Counter(AtomicU64);
    impl IdGenerator for Counter {
        fn new_id(&self) -> String {
            format!("id-{}", self.0.fetch_add(1, Ordering::SeqCst))
        }
    }

    fn record(input: &str) -> ExecutionRecord {
        ExecutionRecord {
            key: "sm:e".into(),
            arn: "arn:aws:states:us-east-1:1:execution:sm:e".into(),
            sm_name: "sm".into(),
            sm_arn: "arn:aws:states:us-east-1:1:stateMachine:sm".into(),
            revision_id: "r".into(),
            role_arn: "role".into(),
            name: "e".into(),
            input: input.into(),
            status: ExecutionStatus::Running,
            output: None,
            error: None,
            cause: None,
            start_ms: 0,
            stop_ms: None,
            redrive_count: 0,
            redrive_ms: None,
            seq: 1,
            rt: Runtime::default(),
        }
    }

    fn run(
        rec: &mut ExecutionRecord,
        def: &StateMachine,
        command: Command,
        now_ms: u64,
    ) -> Transition {
        let ids = Counter(AtomicU64::new(0));
        let scope = ArnScope {
            region: "us-east-1".into(),
            account: "1".into(),
        };
        let seq = || 7;
        let ctx = Ctx {
            now_ms,
            ids: &ids,
            scope: &scope,
            history: true,
            uses_context: true,
            max_payload_bytes: 1024,
            next_seq: &seq,
        };
        apply(rec, def, command, &ctx)
    }

    fn kinds(t: &Transition) -> Vec<&'static str> {
        t.events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn a_task_is_scheduled_then_answered_once() {
        let def = asl::parse(r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::sns:publish","TimeoutSeconds":9,"End":true}}}"#).unwrap();
        let mut rec = record(r#"{"m":1}"#);
        let t = run(&mut rec, &def, Command::Start, 100);
        assert_eq!(
            kinds(&t),
            [
                "ExecutionStarted",
                "TaskStateEntered",
                "TaskScheduled",
                "TaskStarted"
            ]
        );
        let dispatch = t.effects.iter().find_map(|e| match e {
            Effect::Dispatch(d) => Some(d.clone()),
            _ => None,
        });
        let dispatch = dispatch.expect("a dispatch");
        assert_eq!(dispatch.input, json!({"m": 1}));
        assert!(
            t.effects
                .iter()
                .any(|e| matches!(e, Effect::TimerArmed { due_ms: 9100, .. }))
        );
        // A stale answer changes nothing.
        let stale = run(
            &mut rec,
            &def,
            Command::WorkerAnswered {
                thread: dispatch.thread,
                invocation_id: "other".into(),
                result: Ok(json!(1)),
            },
            200,
        );
        assert!(stale.unchanged && stale.events.is_empty());
        let done = run(
            &mut rec,
            &def,
            Command::WorkerAnswered {
                thread: dispatch.thread,
                invocation_id: dispatch.invocation_id.clone(),
                result: Ok(json!({"ok": 1})),
            },
            300,
        );
        assert_eq!(
            kinds(&done),
            ["TaskSucceeded", "TaskStateExited", "ExecutionSucceeded"]
        );
        assert_eq!(rec.status, ExecutionStatus::Succeeded);
        assert!(rec.rt.timers.is_empty(), "the timeout timer is cancelled");
        assert!(done.effects.iter().any(|e| matches!(e, Effect::Finished)));
        // The same answer again: nothing.
        let again = run(
            &mut rec,
            &def,
            Command::WorkerAnswered {
                thread: dispatch.thread,
                invocation_id: dispatch.invocation_id,
                result: Ok(json!({})),
            },
            400,
        );
        assert!(again.events.is_empty());
        assert_eq!(rec.rt.last_event, 7);
    }

    #[test]
    fn a_stale_timer_only_deletes_its_key() {
        let def =
            asl::parse(r#"{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":1,"End":true}}}"#)
                .unwrap();
        let mut rec = record("{}");
        run(&mut rec, &def, Command::Start, 0);
        let stale = run(
            &mut rec,
            &def,
            Command::TimerFired {
                timer: 99,
                due_ms: 5,
            },
            10,
        );
        assert!(stale.unchanged);
        assert!(!stale.writes.is_empty());
        let fired = run(
            &mut rec,
            &def,
            Command::TimerFired {
                timer: 0,
                due_ms: 1000,
            },
            1000,
        );
        assert_eq!(kinds(&fired), ["WaitStateExited", "ExecutionSucceeded"]);
    }

    #[test]
    fn the_context_object_reaches_parameters() {
        let def = asl::parse(r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"id.$":"$$.Execution.Id","state.$":"$$.State.Name","start.$":"$$.Execution.StartTime"},"End":true}}}"#).unwrap();
        let mut rec = record("{}");
        run(&mut rec, &def, Command::Start, 0);
        let out: Value = serde_json::from_str(rec.output.as_deref().unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"id": rec.arn, "state": "P", "start": "1970-01-01T00:00:00.000Z"})
        );
    }
}
