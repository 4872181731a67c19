//! The supervised job: started in a process group of its own, so that stopping it stops its
//! children too; killed with the runner if the runner dies (`PR_SET_PDEATHSIG`).

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

pub(crate) fn start(command: &[String], fencing: &Fencing<'_>) -> io::Result<Job> {
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .env("ALMOST_RAFT_TERM", fencing.term.to_string())
        .env("ALMOST_RAFT_LEADER", fencing.leader)
        .env("ALMOST_RAFT_CLUSTER", fencing.cluster)
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Dies with the runner, even if the runner is killed with SIGKILL.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = child.id().expect("a child just spawned has a pid");
    Ok(Job { child, pid })
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
