//! CPU time of the processes under test, read from /proc as bench-scripts/compare.sh does
//! (utime+stime of all threads, in clock ticks), sampled by the tool itself at the edges of
//! the measured phase: connecting and subscribing a thousand clients is set-up, not the
//! per-message cost, and a shell sampling around the whole run would count it.

use std::fs;

/// A named group of processes (`proxy=123`, `nodes=1,2,3`) whose CPU is reported together.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub pids: Vec<u32>,
}

impl std::str::FromStr for Group {
    type Err = String;

    fn from_str(text: &str) -> Result<Group, String> {
        let (name, list) = text.split_once('=').ok_or("expected NAME=PID[,PID...]")?;
        let pids = list
            .split(',')
            .filter(|pid| !pid.is_empty())
            .map(|pid| pid.parse().map_err(|_| format!("bad pid {pid:?}")))
            .collect::<Result<Vec<u32>, String>>()?;
        Ok(Group {
            name: name.to_string(),
            pids,
        })
    }
}

/// utime+stime in ticks of one process (`self` for this one); 0 if it is gone.
fn ticks_of(pid: &str) -> u64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = fields.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state (field 3).
    let at = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    at(11) + at(12)
}

/// Busy ticks of the whole machine (user, nice, system, irq, softirq), as compare.sh counts.
fn machine_busy() -> u64 {
    let Ok(stat) = fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(cpu) = stat.lines().find(|line| line.starts_with("cpu ")) else {
        return 0;
    };
    let fields: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    [0, 1, 2, 5, 6].iter().filter_map(|&i| fields.get(i)).sum()
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf takes no pointers.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// One reading of every group, this process and the machine.
#[derive(Clone)]
pub struct Sample {
    groups: Vec<u64>,
    own: u64,
    machine: u64,
}

pub fn sample(groups: &[Group]) -> Sample {
    let groups = groups
        .iter()
        .map(|group| {
            group
                .pids
                .iter()
                .map(|pid| ticks_of(&pid.to_string()))
                .sum()
        })
        .collect();
    Sample {
        groups,
        own: ticks_of("self"),
        machine: machine_busy(),
    }
}

/// The CPU between two samples: per group and for this tool, in µs per operation, and the
/// share of a core everything else on the machine used per second of the phase.
pub fn report(groups: &[Group], start: &Sample, end: &Sample, ops: u64, secs: f64) -> String {
    let tick_us = 1e6 / ticks_per_second();
    let per_op = |ticks: u64| ticks as f64 * tick_us / ops.max(1) as f64;
    let mut out = String::new();
    let mut measured = 0;
    for (i, group) in groups.iter().enumerate() {
        let used = end.groups[i].saturating_sub(start.groups[i]);
        measured += used;
        out += &format!(" cpu_{}_us={:.3}", group.name, per_op(used));
    }
    let own = end.own.saturating_sub(start.own);
    out += &format!(" cpu_tool_us={:.3}", per_op(own));
    let others = end
        .machine
        .saturating_sub(start.machine)
        .saturating_sub(measured + own);
    let share = others as f64 * tick_us / 1e6 / secs.max(1e-9);
    out += &format!(" other_cpu_frac={share:.3}");
    out
}
