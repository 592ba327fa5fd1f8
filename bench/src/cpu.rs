//! Where the machine's cores went during a phase: the gateway, PostgreSQL, this process (load
//! generator, emulator and the reference endpoint), anything else, and idle. Read from `/proc`
//! before and after the phase, in the kernel's clock ticks; Linux only (elsewhere nothing is
//! reported).
//!
//! Without this a run cannot tell a pipeline that waits from one that has run out of cores,
//! and the two call for different fixes.

use std::fmt;

/// Cumulative CPU time, in clock ticks, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// All cores, every state (`/proc/stat`'s `cpu` line).
    total: u64,
    /// All cores, idle or waiting for I/O.
    idle: u64,
    gateway: u64,
    postgres: u64,
    bench: u64,
}

impl Snapshot {
    /// Reads the counters now; `None` where `/proc` cannot be read.
    pub fn take(gateway_pid: u32) -> Option<Self> {
        let (total, idle) = machine(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let ticks = |path: &str| {
            let stat = std::fs::read_to_string(path).ok()?;
            process(&stat).map(|p| p.own)
        };
        let gateway = ticks(&format!("/proc/{gateway_pid}/stat"))?;
        let bench = ticks("/proc/self/stat")?;
        Some(Self {
            total,
            idle,
            gateway,
            postgres: postgres(),
            bench,
        })
    }

    /// The shares of all cores from `self` to `later`.
    pub fn until(&self, later: &Self) -> Option<Shares> {
        let total = later.total.checked_sub(self.total).filter(|&t| t > 0)?;
        #[allow(clippy::cast_precision_loss)] // tick counts far below 2^52
        let share = |before: u64, after: u64| after.saturating_sub(before) as f64 / total as f64;
        let gateway = share(self.gateway, later.gateway);
        let postgres = share(self.postgres, later.postgres);
        let bench = share(self.bench, later.bench);
        let idle = share(self.idle, later.idle);
        Some(Shares {
            gateway,
            postgres,
            bench,
            idle,
            other: (1.0 - gateway - postgres - bench - idle).max(0.0),
        })
    }
}

/// Fractions of all cores over a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shares {
    pub gateway: f64,
    pub postgres: f64,
    pub bench: f64,
    pub other: f64,
    pub idle: f64,
}

impl fmt::Display for Shares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gateway {:.0} %, PostgreSQL {:.0} %, bench process {:.0} %, other {:.0} %, idle {:.0} %",
            self.gateway * 100.0,
            self.postgres * 100.0,
            self.bench * 100.0,
            self.other * 100.0,
            self.idle * 100.0
        )
    }
}

/// Total and idle ticks from the text of `/proc/stat`.
fn machine(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
    // already counted in user and nice.
    let counted = fields.get(..8)?;
    Some((counted.iter().sum(), fields[3] + fields[4]))
}

/// One process's CPU ticks, from the text of `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Process<'a> {
    command: &'a str,
    /// Its own threads' user and system time.
    own: u64,
    /// Its waited-for children's.
    children: u64,
}

fn process(stat: &str) -> Option<Process<'_>> {
    // `pid (command) state …`: the command may hold spaces and parentheses, so it ends at the
    // last `)`.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let command = stat.get(open + 1..close)?;
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the command: state is field 3 of the line, utime 14, stime 15, cutime 16,
    // cstime 17.
    let field = |n: usize| rest.get(n - 3)?.parse::<u64>().ok();
    Some(Process {
        command,
        own: field(14)? + field(15)?,
        children: field(16)? + field(17)?,
    })
}

/// Every PostgreSQL process's ticks, with those of backends that ended since the server
/// started (the postmaster waits for them, so they count among its children's).
fn postgres() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            let p = process(&stat)?;
            (p.command == "postgres").then_some(p.own + p.children)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_line_counts_every_state_but_guest_time_once() {
        let stat = "cpu  100 5 50 800 20 1 2 3 40 0\ncpu0 50 2 25 400 10 0 1 1 20 0\nintr 1\n";
        assert_eq!(machine(stat), Some((981, 820)));
        assert_eq!(machine("intr 1\n"), None);
        assert_eq!(machine("cpu  1 2 x 4 5 6 7 8\n"), None);
        assert_eq!(machine("cpu  1 2 3\n"), None);
    }

    #[test]
    fn a_process_line_is_read_past_a_command_with_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    120 30 7 3 20 0 8 0 12345 1000000 500 18446744073709551615";
        let p = process(stat).unwrap();
        assert_eq!(p.command, "tokio (rt) worker");
        assert_eq!((p.own, p.children), (150, 10));
        assert_eq!(process("4242 (short) S 1 2"), None);
        assert_eq!(process("no command here"), None);
    }

    #[test]
    fn shares_are_fractions_of_all_cores_with_the_rest_as_other() {
        let before = Snapshot {
            total: 1_000,
            idle: 100,
            gateway: 10,
            postgres: 20,
            bench: 30,
        };
        let after = Snapshot {
            total: 2_000,
            idle: 150,
            gateway: 310,
            postgres: 420,
            bench: 230,
        };
        let shares = before.until(&after).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(shares.gateway, 0.3), "{shares:?}");
        assert!(close(shares.postgres, 0.4), "{shares:?}");
        assert!(close(shares.bench, 0.2), "{shares:?}");
        assert!(close(shares.idle, 0.05), "{shares:?}");
        assert!(close(shares.other, 0.05), "{shares:?}");
        assert_eq!(
            shares.to_string(),
            "gateway 30 %, PostgreSQL 40 %, bench process 20 %, other 5 %, idle 5 %"
        );
        assert_eq!(after.until(&before), None, "time runs forwards");
        assert_eq!(
            before.until(&before),
            None,
            "an empty interval has no shares"
        );
    }

    #[test]
    fn this_process_and_the_machine_can_be_read_here() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let first = Snapshot::take(std::process::id()).expect("readable /proc");
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let second = Snapshot::take(std::process::id()).unwrap();
        let shares = first.until(&second).unwrap();
        assert!(shares.bench > 0.0, "200 ms of spinning shows: {shares}");
        // The gateway here is this process too.
        assert!((shares.gateway - shares.bench).abs() < 1e-9);
    }
}
