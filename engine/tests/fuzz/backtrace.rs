//! Where a hang or an abort happened, from gdb when the machine has it: a hung child is
//! attached before it is killed, an aborted one is run again under gdb. The innermost frame
//! of the simulator's own code names the finding, so that two hangs with different causes
//! are two findings.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::Config;

/// Whether gdb can be run at all.
pub fn available() -> bool {
    Command::new("gdb").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The stacks of every thread of a running process.
pub fn attach(pid: u32) -> String {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "30", "gdb", "-p", &pid.to_string(), "-batch", "-ex", "thread apply all bt 100"])
        .stdin(Stdio::null())
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

/// Runs the command again under gdb (with the same memory cap) and returns the stack where
/// it stopped on a signal.
pub fn rerun(config: &Config, args: &[String], cwd: &Path) -> String {
    let script = format!("ulimit -v {} 2>/dev/null; exec \"$0\" \"$@\"", config.mem_mb * 1024);
    let limit = (config.timeout.as_secs() + 30).to_string();
    let out = Command::new("timeout")
        .args(["-s", "KILL", &limit, "sh", "-c", &script, "gdb", "-batch", "-ex", "run", "-ex", "bt 300", "--args"])
        .arg(&config.bin)
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

/// The function of the innermost frame in `engine/src/`, preferring a thread that is
/// working over one that waits (rayon's caller waits while a worker runs the case).
pub fn site(backtrace: &str) -> Option<String> {
    let mut threads: Vec<Vec<&str>> = vec![Vec::new()];
    for line in backtrace.lines() {
        if line.starts_with("Thread ") {
            threads.push(Vec::new());
        } else if line.starts_with('#') {
            threads.last_mut().unwrap().push(line);
        }
    }
    let waiting = |frames: &Vec<&str>| {
        frames.first().is_some_and(|f| {
            ["futex", "syscall", "lll_lock_wait", "pthread_cond", "nanosleep", "epoll", "poll"]
                .iter()
                .any(|w| f.contains(w))
        })
    };
    let own_frame = |frames: &Vec<&str>| {
        frames.iter().find(|f| f.contains("engine/src/") && f.contains("symbiote::")).map(|f| function(f))
    };
    threads.iter().filter(|t| !waiting(t)).find_map(own_frame).or_else(|| threads.iter().find_map(own_frame))
}

/// `#3  0x00.. in symbiote::workload::prefixes::zipf_cdf () at engine/src/...` ->
/// `workload::prefixes::zipf_cdf`.
fn function(frame: &str) -> String {
    let start = frame.find("symbiote::").unwrap();
    let rest = &frame[start + "symbiote::".len()..];
    let end = rest.find(" (").or_else(|| rest.find(" at ")).unwrap_or(rest.len());
    rest[..end].trim().to_string()
}
