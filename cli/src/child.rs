//! The supervised job: started in a process group of its own, so that stopping it stops its
//! children too. The group's leader is a small guard (this program, `__guard`) that runs the
//! command and kills the whole group if the runner dies, even by SIGKILL: the kernel tells the
//! guard (`PR_SET_PDEATHSIG`), which a grandchild of the runner would not be told.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::{Child, Command};

/// What the job is told about the leadership it runs under.
pub(crate) struct Fencing<'a> {
    pub(crate) term: u64,
    pub(crate) leader: &'a str,
    pub(crate) cluster: &'a str,
}

/// A running job: its process group has the child's pid as id.
pub(crate) struct Job {
    child: Child,
    pub(crate) pid: u32,
}

/// Makes this process the reaper of orphaned descendants (a job's grandchildren whose parent
/// exited), so none is left behind unreaped.
pub(crate) fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// The signal the kernel sends the guard when the runner dies.
const RUNNER_DIED: i32 = libc::SIGUSR2;

pub(crate) fn start(command: &[String], fencing: &Fencing<'_>) -> io::Result<Job> {
    let runner = std::process::id() as i32;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("__guard")
        .args(command)
        .env("ALMOST_RAFT_TERM", fencing.term.to_string())
        .env("ALMOST_RAFT_LEADER", fencing.leader)
        .env("ALMOST_RAFT_CLUSTER", fencing.cluster)
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, RUNNER_DIED, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != runner {
                return Err(io::Error::other("the runner died as the job started"));
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = child.id().expect("a child just spawned has a pid");
    Ok(Job { child, pid })
}

extern "C" fn kill_group(_: i32) {
    // SAFETY: kill(2) is async-signal-safe; 0 is this process's own group.
    unsafe { libc::kill(0, libc::SIGKILL) };
}

extern "C" fn pass(_: i32) {}

/// `__guard COMMAND...`: the leader of a job's process group. Runs the command, exits as it
/// exits (with its code, or killed by its signal), and kills the whole group if the runner
/// dies. Signals the runner sends the group reach the command; the guard only outlives them.
pub fn guard_main(command: Vec<String>) -> std::process::ExitCode {
    // SAFETY: installing handlers that only call async-signal-safe functions. `pass` is a
    // handler, not SIG_IGN, so that the command starts with the default dispositions.
    unsafe {
        libc::signal(RUNNER_DIED, kill_group as *const () as libc::sighandler_t);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(signal, pass as *const () as libc::sighandler_t);
        }
    }
    let Some((program, args)) = command.split_first() else {
        return std::process::ExitCode::from(2);
    };
    let status = match std::process::Command::new(program).args(args).status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("almost-raft run: cannot start {program}: {e}");
            return std::process::ExitCode::from(127);
        }
    };
    if let Some(signal) = status.signal() {
        // Die the way the command died, so that the runner reports it.
        // SAFETY: restoring the default action, then raising the signal at this process.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
    std::process::ExitCode::from(status.code().unwrap_or(1) as u8)
}

impl Job {
    /// Sends `signal` to the job's whole process group.
    pub(crate) fn signal(&self, signal: i32) {
        // SAFETY: kill with a process group id we created; a gone group is ESRCH, ignored.
        unsafe { libc::kill(-(self.pid as i32), signal) };
    }

    /// Waits for the job to exit by itself.
    pub(crate) async fn exited(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Stops the whole group: `first` (SIGTERM, or SIGINT passed on), then SIGKILL after
    /// `grace`. Returns once the child is reaped and the group is killed (so no member
    /// outlives it).
    pub(crate) async fn stop(mut self, first: i32, grace: Duration) -> io::Result<ExitStatus> {
        self.signal(first);
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                self.signal(libc::SIGKILL);
                self.child.wait().await?
            }
        };
        self.signal(libc::SIGKILL); // members that outlived the child (they ignored SIGTERM)
        Ok(status)
    }
}

/// `exit 3`, `signal 15` or the like, for the JSON lines.
pub(crate) fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => "unknown".to_owned(),
    }
}
