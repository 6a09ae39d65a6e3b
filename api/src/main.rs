use std::process::ExitCode;

fn main() -> ExitCode {
    stepyard_api::cli::main()
}
