//! Running the way nutcracker's init scripts expect: in the background (`-d`), with the
//! process id in a file while it runs (`-p`), logging to a file (`-o`).
//!
//! Debian's init script for nutcracker starts it with `-d` and `-p`, and checks the file with
//! `-t` first; doing the same here lets such a script start percore unchanged.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Mode of the files percore creates (log, pid): the owner writes, everyone reads, as
/// nutcracker creates them.
const FILE_MODE: u32 = 0o644;

/// Moves the process to the background as nutcracker's `-d` does: the parent exits at once,
/// the child leaves the terminal's session, and standard input, output and error go to
/// /dev/null (log to a file with `-o` to keep the logs). The working directory is kept, so
/// relative paths in the flags still mean what they meant.
///
/// Only a process with one thread may fork and go on running Rust code (another thread could
/// hold the allocator's lock forever in the child), so this refuses once any other thread
/// exists: call it before the executors start.
pub fn daemonize() -> io::Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::other(format!(
            "cannot run in the background: the process already has {threads} threads"
        )));
    }
    // SAFETY: daemon(3) forks, and the parent calls _exit; the child, which returns here, is
    // the only thread of its process (checked above), so nothing it needs is held by a thread
    // that did not survive the fork.
    if unsafe { libc::daemon(1, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The pid file: written with this process's id when created, removed when dropped (when
/// `main` returns, after the drain) if it still names this process. On an upgrade the new
/// process writes its own id over the old one's, and the old one, exiting after it, must
/// not remove the file that now names the new one.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    /// What the file held before (an old process's id, on an upgrade), to put back if this
    /// process gives way to it again ([`PidFile::restore`]).
    previous: Option<String>,
}

impl PidFile {
    /// Writes the process id to `path`, replacing what was there.
    pub fn create(path: &Path) -> io::Result<PidFile> {
        let previous = std::fs::read_to_string(path).ok();
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(path)?;
        write!(file, "{}", std::process::id())?;
        Ok(PidFile {
            path: path.to_path_buf(),
            previous,
        })
    }

    /// Puts back what the file held before, if anything: for a new process whose takeover
    /// failed, so the file names the old process, which serves on.
    pub fn restore(mut self) {
        if let Some(previous) = self.previous.take() {
            if self.holds_this_process() && std::fs::write(&self.path, previous).is_ok() {
                std::mem::forget(self);
            }
        }
    }

    /// Whether the file still names this process.
    fn holds_this_process(&self) -> bool {
        std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == std::process::id().to_string())
    }
}

impl Drop for PidFile {
    /// Removes the file if it still names this process; a file already gone is left so, as
    /// nutcracker does.
    fn drop(&mut self) {
        if self.holds_this_process() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Opens the log file for appending (created if missing), as nutcracker's `-o` does, so a
/// log rotation that copies and truncates it keeps working.
pub fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_holds_the_pid_while_it_lives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("percore.pid");
        let pid_file = PidFile::create(&path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written, std::process::id().to_string());
        drop(pid_file);
        assert!(!path.exists());
        // A newer process wrote its id: the file is left to it.
        let pid_file = PidFile::create(&path).unwrap();
        std::fs::write(&path, "1").unwrap();
        drop(pid_file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1");
        // A takeover that failed gives the file back to the old process.
        PidFile::create(&path).unwrap().restore();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1");
    }

    #[test]
    fn log_file_is_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("percore.log");
        std::fs::write(&path, "old\n").unwrap();
        writeln!(open_log(&path).unwrap(), "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
    }
}
