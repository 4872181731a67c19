//! `almost-raft run [options] -- COMMAND` (a job run only while this node leads), or
//! `almost-raft node [options]` (the same as `almost-raft-node`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("run") => almost_raft_cli::run::main(args.collect()).await,
        Some("node") => almost_raft_cli::node::main(args.collect()).await,
        Some("__guard") => almost_raft_cli::guard_main(args.collect()),
        _ => {
            eprintln!(
                "usage: almost-raft run [options] -- COMMAND [ARGS...]\n       almost-raft node [options]"
            );
            ExitCode::from(2)
        }
    }
}
