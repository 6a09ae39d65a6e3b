//! The `stepyard` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::ServerConfig;

#[derive(Debug, Parser)]
#[command(
    name = "stepyard",
    version,
    about = "Self-hosted Step Functions and EventBridge"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start: the size of the `serve` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server on an embedded sled data folder.
    Serve(ServeArgs),
    /// Check an ASL definition: print every problem (JSON Pointer, code, message); exit 1 if any.
    Validate(ValidateArgs),
    /// Run a definition to completion in-process and print the result as JSON.
    Run(RunArgs),
    /// Deploy a folder's `stepyard.toml` (functions, task definitions, topics, state machines,
    /// buses, rules) to a running server; a second apply changes nothing.
    Apply(DeployArgs),
    /// Remove what a folder's `stepyard.toml` declares from a running server.
    Delete(DeployArgs),
    /// Events on a running server's buses.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Executions on a running server.
    #[command(subcommand)]
    Executions(ExecutionsCommand),
    /// Answer a task that waits for its token (`.waitForTaskToken`, activities).
    #[command(subcommand)]
    TaskTokens(TaskTokensCommand),
}

#[derive(Debug, Subcommand)]
pub enum TaskTokensCommand {
    /// Complete the waiting task with its result.
    Success(TokenSuccessArgs),
    /// Fail the waiting task (the state's Retry and Catch match the error).
    Failure(TokenFailureArgs),
    /// Tell a task with `HeartbeatSeconds` that its worker is alive.
    Heartbeat(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The task token (`$$.Task.Token` in the definition).
    #[arg(value_name = "TASK_TOKEN")]
    pub task_token: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct TokenSuccessArgs {
    /// The task token (`$$.Task.Token` in the definition).
    #[arg(value_name = "TASK_TOKEN")]
    pub task_token: String,
    /// The task's result: JSON, or `@FILE` to read it from a file.
    #[arg(long, default_value = "{}")]
    pub output: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct TokenFailureArgs {
    /// The task token (`$$.Task.Token` in the definition).
    #[arg(value_name = "TASK_TOKEN")]
    pub task_token: String,
    /// The error name, e.g. `Rejected`.
    #[arg(long)]
    pub error: Option<String>,
    /// Why, for a person.
    #[arg(long)]
    pub cause: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Where the server is (for the commands that talk to a running server).
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The server's URL.
    #[arg(
        long,
        env = "STEPYARD_ENDPOINT",
        default_value = "http://127.0.0.1:8080"
    )]
    pub endpoint: String,
    /// A bearer token, for a server started with `--auth-tokens`.
    #[arg(long, env = "STEPYARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ClientArgs {
    fn client(&self) -> crate::client::Client {
        crate::client::Client::new(&crate::client::ClientConfig {
            endpoint: self.endpoint.clone(),
            token: self.token.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The folder holding `stepyard.toml` and the files it names.
    pub dir: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Publish one event (PutEvents) and print its id.
    Put(PutEventArgs),
}

#[derive(Debug, Args)]
pub struct PutEventArgs {
    /// The bus.
    #[arg(long, default_value = "default")]
    pub bus: String,
    /// The event's `source`, e.g. `acme.orders`.
    #[arg(long)]
    pub source: String,
    /// The event's `detail-type`, e.g. `Order Placed`.
    #[arg(long)]
    pub detail_type: String,
    /// The event's detail: a JSON object, or `@FILE` to read it from a file.
    #[arg(long, default_value = "{}")]
    pub detail: String,
    /// An ARN the event is about (repeatable).
    #[arg(long = "resource")]
    pub resources: Vec<String>,
    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum ExecutionsCommand {
    /// List executions, newest first (of one state machine, or of all).
    List(ListExecutionsArgs),
    /// Show one execution: status, times, input, output or error.
    Describe(ExecutionArgs),
    /// Show an execution's history, one event a line.
    History(ExecutionArgs),
}

#[derive(Debug, Args)]
pub struct ListExecutionsArgs {
    /// Only this state machine's executions.
    #[arg(long)]
    pub state_machine: Option<String>,
    /// Only executions with this status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE).
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub max: usize,
    /// Print the executions as a JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ExecutionArgs {
    /// STATE_MACHINE/EXECUTION, or the execution's ARN.
    pub execution: String,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The definition file (JSON), or `-` for standard input.
    pub file: PathBuf,
    /// The execution's input as JSON [default: {}].
    #[arg(long, default_value = "{}")]
    pub input: String,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The definition file (JSON), or `-` for standard input.
    pub file: PathBuf,
    /// Print the problems as a JSON array instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Every option is optional here so that the config file can sit below flags and environment variables.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML config file (values below environment variables and flags).
    #[arg(long, env = "STEPYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "STEPYARD_LISTEN")]
    pub listen: Option<String>,
    /// Folder of the sled database [default: ./stepyard-data].
    #[arg(long, env = "STEPYARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Region written into ARNs [default: us-east-1].
    #[arg(long, env = "STEPYARD_REGION")]
    pub region: Option<String>,
    /// Account id written into ARNs [default: 123456789012].
    #[arg(long, env = "STEPYARD_ACCOUNT")]
    pub account: Option<String>,
    /// Largest accepted request body in bytes [default: 1048576].
    #[arg(long, env = "STEPYARD_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Per-request timeout in seconds [default: 60].
    #[arg(long, env = "STEPYARD_REQUEST_TIMEOUT_SECONDS")]
    pub request_timeout_seconds: Option<u64>,
    /// Requests per second allowed per client address; 0 is no limit [default: 0].
    #[arg(long, env = "STEPYARD_RATE_LIMIT_PER_SECOND")]
    pub rate_limit_per_second: Option<u32>,
    /// Bearer tokens the native API accepts, comma-separated [default: none, no token needed].
    #[arg(long, env = "STEPYARD_AUTH_TOKENS", hide_env_values = true)]
    pub auth_tokens: Option<String>,
    /// AWS access keys whose SigV4 signatures are verified, as ID:SECRET pairs, comma-separated
    /// [default: none, signatures not verified].
    #[arg(long, env = "STEPYARD_AWS_ACCESS_KEYS", hide_env_values = true)]
    pub aws_access_keys: Option<String>,
    /// Listen on a non-loopback address without any auth (on purpose).
    #[arg(long, env = "STEPYARD_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Docker endpoint for container tasks: unix:///PATH or tcp://HOST:PORT
    /// [default: unix:///var/run/docker.sock].
    #[arg(long, env = "STEPYARD_DOCKER_HOST")]
    pub docker_host: Option<String>,
    /// Host folders that task definitions may bind-mount (read-only), comma-separated
    /// [default: none, no bind mounts].
    #[arg(long, env = "STEPYARD_CONTAINER_MOUNT_ROOTS")]
    pub container_mount_roots: Option<String>,
    /// Container tasks running at once; more wait in a queue [default: 4].
    #[arg(long, env = "STEPYARD_MAX_RUNNING_CONTAINERS")]
    pub max_running_containers: Option<usize>,
    /// The API URL containers get as STEPYARD_API_URL [default: the server also listens on
    /// Docker's bridge gateway, and containers get that address].
    #[arg(long, env = "STEPYARD_CONTAINER_API_URL")]
    pub container_api_url: Option<String>,
    /// The secret GitHub webhooks are signed with (checks `X-Hub-Signature-256`).
    #[arg(long, env = "STEPYARD_GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    pub github_webhook_secret: Option<String>,
    /// The SMTP relay that topics' email subscriptions go through, as HOST:PORT (plain SMTP,
    /// e.g. a local relay) [default: none, email deliveries fail until it is set].
    #[arg(long, env = "STEPYARD_SMTP_RELAY")]
    pub smtp_relay: Option<String>,
    /// The From address of notification mails [default: stepyard@localhost].
    #[arg(long, env = "STEPYARD_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// SMTP AUTH user name, when the relay asks for one.
    #[arg(long, env = "STEPYARD_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP AUTH password.
    #[arg(long, env = "STEPYARD_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Hosts besides loopback that http/https topic subscriptions may name, comma-separated
    /// [default: none].
    #[arg(long, env = "STEPYARD_ALLOWED_HTTP_HOSTS")]
    pub allowed_http_hosts: Option<String>,
    /// Let http/https topic subscriptions name any host (the server then sends requests
    /// wherever a subscriber asks).
    #[arg(long, env = "STEPYARD_ALLOW_ANY_HTTP_HOST")]
    pub allow_any_http_host: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Validate(args) => validate(args),
        Command::Run(args) => run(args),
        Command::Apply(args) => client_command(deploy(args, Deploy::Apply)),
        Command::Delete(args) => client_command(deploy(args, Deploy::Delete)),
        Command::Events(EventsCommand::Put(args)) => client_command(put_event(args)),
        Command::Executions(command) => client_command(executions(command)),
        Command::TaskTokens(command) => client_command(task_tokens(command)),
    }
}

/// Runs a command that talks to a server: exit 0 on success, 1 when the server refused or
/// could not be reached, 2 for a mistake in the command or the manifest.
fn client_command(
    command: impl std::future::Future<Output = crate::client::Result<()>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("stepyard: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stepyard: {err}");
            match err {
                crate::client::Error::Manifest(_) | crate::client::Error::Usage(_) => {
                    ExitCode::from(2)
                }
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// What `deploy` does with a folder's manifest.
#[derive(Debug, Clone, Copy)]
enum Deploy {
    Apply,
    Delete,
}

async fn deploy(args: DeployArgs, what: Deploy) -> crate::client::Result<()> {
    use crate::client::{deploy, manifest::Manifest};
    // The manifest's `${VAR}` come from this process's environment (read here, at the top).
    let resolved = Manifest::load(&args.dir, |name| std::env::var(name).ok())?;
    let client = args.client.client();
    let mut print = |change: &deploy::Change| println!("{change}");
    let changes = match what {
        Deploy::Apply => deploy::apply(&client, &resolved, &mut print).await?,
        Deploy::Delete => deploy::delete(&client, &resolved, &mut print).await?,
    };
    println!("{}", deploy::summary(&changes));
    Ok(())
}

/// A JSON argument given inline or as `@FILE`.
fn json_argument(text: &str, flag: &str) -> crate::client::Result<serde_json::Value> {
    use crate::client::Error;
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("{flag}: cannot read {path}: {e}")))?,
        None => text.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{flag} is not JSON: {e}")))
}

async fn task_tokens(command: TaskTokensCommand) -> crate::client::Result<()> {
    use serde_json::json;
    let (client, path, body, said) = match command {
        TaskTokensCommand::Success(args) => (
            args.client.client(),
            "/v1/task-tokens/success",
            json!({"task_token": args.task_token, "output": json_argument(&args.output, "--output")?}),
            "completed",
        ),
        TaskTokensCommand::Failure(args) => (
            args.client.client(),
            "/v1/task-tokens/failure",
            json!({"task_token": args.task_token, "error": args.error, "cause": args.cause}),
            "failed",
        ),
        TaskTokensCommand::Heartbeat(args) => (
            args.client.client(),
            "/v1/task-tokens/heartbeat",
            json!({"task_token": args.task_token}),
            "kept alive",
        ),
    };
    client.post(path, &body).await?;
    println!("task {said}");
    Ok(())
}

async fn put_event(args: PutEventArgs) -> crate::client::Result<()> {
    use crate::client::{Error, commands};
    let detail = json_argument(&args.detail, "--detail")?;
    if !detail.is_object() {
        return Err(Error::Usage("--detail must be a JSON object".into()));
    }
    let entry = commands::put_event(
        &args.client.client(),
        &args.bus,
        &args.source,
        &args.detail_type,
        &detail,
        &args.resources,
    )
    .await?;
    if args.json {
        println!("{entry}");
    } else {
        println!(
            "event {} put on bus {}",
            entry["event_id"].as_str().unwrap_or("?"),
            args.bus
        );
    }
    Ok(())
}

async fn executions(command: ExecutionsCommand) -> crate::client::Result<()> {
    use crate::client::commands;
    match command {
        ExecutionsCommand::List(args) => {
            let list = commands::list_executions(
                &args.client.client(),
                args.state_machine.as_deref(),
                args.status.as_deref(),
                args.max,
            )
            .await?;
            if args.json {
                println!("{}", serde_json::Value::Array(list));
            } else {
                print!("{}", commands::format_executions(&list));
            }
        }
        ExecutionsCommand::Describe(args) => {
            let execution =
                commands::describe_execution(&args.client.client(), &args.execution).await?;
            if args.json {
                println!("{execution}");
            } else {
                print!("{}", commands::format_execution(&execution));
            }
        }
        ExecutionsCommand::History(args) => {
            let events =
                commands::execution_history(&args.client.client(), &args.execution).await?;
            if args.json {
                println!("{}", serde_json::Value::Array(events));
            } else {
                print!("{}", commands::format_history(&events));
            }
        }
    }
    Ok(())
}

/// Exit code 0 when the execution SUCCEEDED, 1 when it ended otherwise, 2 when it could not start.
fn run(args: RunArgs) -> ExitCode {
    let definition = match read_input(&args.file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("stepyard: cannot read {}: {err}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("stepyard: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_once(definition, args.input)) {
        Ok(result) => {
            println!("{result:#}");
            if result["status"] == "SUCCEEDED" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("stepyard: {err}");
            ExitCode::from(2)
        }
    }
}

async fn run_once(definition: String, input: String) -> anyhow::Result<serde_json::Value> {
    use stepyard_engine::{CreateStateMachine, Engine, EngineConfig, StartExecution};
    // A throwaway store: `run` is for trying a definition, not for keeping its execution.
    let temp = tempfile::tempdir()?;
    let engine = Engine::open(EngineConfig::new(temp.path().join("data"))).await?;
    let result = async {
        let machine = engine
            .create_state_machine(CreateStateMachine {
                name: "run".into(),
                definition,
                ..CreateStateMachine::default()
            })
            .await?;
        let started = engine
            .start_execution(StartExecution {
                state_machine_arn: machine.arn,
                name: Some("run".into()),
                input: Some(input),
            })
            .await?;
        let info = engine.await_execution(&started.execution_arn).await?;
        let output = info
            .output
            .as_deref()
            .map(|text| {
                serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.into()))
            })
            .unwrap_or(serde_json::Value::Null);
        Ok::<_, stepyard_engine::Error>(serde_json::json!({
            "status": info.status.as_str(),
            "output": output,
            "error": info.error,
            "cause": info.cause,
        }))
    }
    .await;
    engine.shutdown().await?;
    Ok(result?)
}

fn read_input(path: &std::path::Path) -> std::io::Result<String> {
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
}

fn validate(args: ValidateArgs) -> ExitCode {
    let text = match read_input(&args.file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("stepyard: cannot read {}: {err}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let problems = stepyard_statelang::validate(&text);
    if args.json {
        let list: Vec<serde_json::Value> = problems
            .iter()
            .map(|problem| {
                serde_json::json!({
                    "pointer": problem.pointer,
                    "code": problem.code.as_str(),
                    "message": problem.message,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else if problems.is_empty() {
        println!("{}: valid", args.file.display());
    } else {
        for problem in &problems {
            println!("{problem}");
        }
        eprintln!(
            "{}: {} problem{}",
            args.file.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let log = crate::telemetry::init();
    let outcome = serve_until_stopped(args);
    // Written log lines go out before the final message, so it stays the last line.
    drop(log);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => {
            eprintln!("stepyard: {message}");
            code
        }
    }
}

fn serve_until_stopped(args: ServeArgs) -> Result<(), (String, ExitCode)> {
    let config =
        ServerConfig::resolve(&args).map_err(|err| (err.to_string(), ExitCode::from(2)))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|err| {
        (
            format!("cannot start the async runtime: {err}"),
            ExitCode::FAILURE,
        )
    })?;
    runtime
        .block_on(crate::server::run(config, crate::server::shutdown_signal()))
        .map_err(|err| (format!("{err:#}"), ExitCode::FAILURE))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_subcommands_arguments_are_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
