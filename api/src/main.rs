use std::process::ExitCode;

// glibc's allocator took about a third of the server's CPU under load (sled's node copies,
// serde_json values and history text are many short-lived allocations across threads);
// mimalloc's thread-local free lists cost a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    stepyard_api::cli::main()
}
