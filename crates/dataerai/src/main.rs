//! `dataerai`: the Dataerai CLI and transfer daemon in one binary, thin glue
//! over two libraries: `dataerai_client` (REST client, credentials, token
//! refresh) and `dataerai_transfer` (upload/download engines, journal).
//!
//! - [`service`]: the operations (validation + calls), shared by the CLI and
//!   the daemon.
//! - [`daemon`]: JSON-RPC over a Unix socket (`docs/ipc.md`).
//! - [`cli`]: the command line, one module per command group.
//! - [`config`]: where the daemon socket lives.
//! - [`export`]: provenance export (PROV-JSON files, RO-Crate folders).

mod cli;
mod config;
mod daemon;
mod export;
mod service;

use clap::Parser;

fn main() {
    dataerai_proto::io::keep_freed_buffers();
    let cli = cli::Cli::parse();
    let default_level = if matches!(cli.command, cli::Command::Daemon { .. }) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DATAERAI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e} (ERR_INTERNAL)");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(cli::run(cli));
    // Do not wait for detached tasks (e.g. transfers of a stopped daemon).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}
