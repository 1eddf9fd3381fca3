//! Running Rust code inside a lab namespace.
//!
//! `setns(2)` with `CLONE_NEWNET` switches only the calling *thread*, so [`in_netns`] runs the
//! closure on a fresh scoped thread that enters the namespace and then ends; the test's own threads
//! never change namespace. A socket keeps the namespace it was created in, so a closure may create
//! sockets and hand them back to be used from any thread.

use std::fs::File;
use std::path::Path;
use std::thread;

use nix::sched::{CloneFlags, setns};

use crate::error::{LabError, Result};

/// Runs `f` on a thread inside the named network namespace `netns` and returns its result.
///
/// A panic inside `f` is resumed on the calling thread, so assertions in the closure fail the test.
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let path = Path::new("/run/netns").join(netns);
    let handle = File::open(&path).map_err(|e| LabError::io("open", path, e))?;
    thread::scope(|scope| {
        let worker = scope.spawn(move || {
            setns(&handle, CloneFlags::CLONE_NEWNET).map_err(|errno| LabError::Netns {
                netns: netns.to_owned(),
                what: "setns",
                source: errno.into(),
            })?;
            Ok(f())
        });
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
