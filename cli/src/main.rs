//! `almost-raft-node [options]`, `almost-raft-node run [options] -- COMMAND`, or
//! `almost-raft-node host [options]`: see the library's `node`, `run` and `host` modules.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "__guard") {
        return almost_raft_cli::guard_main(args.split_off(1));
    }
    if args.first().is_some_and(|a| a == "host") {
        args.remove(0);
        return almost_raft_cli::host::main(args).await;
    }
    if args.first().is_some_and(|a| a == "run") {
        args.remove(0);
        return almost_raft_cli::run::main(args).await;
    }
    almost_raft_cli::node::main(args).await
}
