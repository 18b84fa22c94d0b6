//! The `regstore` binary; see the `regstore_cli` library for the commands.

use clap::Parser;

fn main() {
    let cli = regstore_cli::Cli::parse();
    // Diagnostics go to stderr and only when asked for, so stdout stays clean for `cat` and
    // `--json`.
    if let Ok(filter) = std::env::var("REGSTORE_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("regstore: cannot start the async runtime: {e}");
            std::process::exit(regstore_cli::error::EXIT_FAILURE);
        }
    };
    let code = runtime.block_on(regstore_cli::run(cli));
    // Dropping the runtime waits for nothing that matters (blocking stdin readers would hang).
    runtime.shutdown_background();
    std::process::exit(code);
}
