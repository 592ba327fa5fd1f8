//! The `switchboard` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    limit_malloc_arenas();
    switchboard::cli::main()
}

/// glibc gives every thread that meets contention an allocation arena of its own (up to eight
/// per core) and seldom hands their free memory back; under load that left the gateway at
/// about twice the resident size of its heap (BENCHMARKS.md, "Memory"). Two arenas keep it close to the
/// heap at no measurable cost in throughput. glibc reads `MALLOC_ARENA_MAX` only when a process
/// starts, so the process executes itself once more with it set; a value set by the operator
/// is left alone, and should the re-execution fail the process goes on as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    use std::os::unix::process::CommandExt as _;
    const ARENAS: &str = "MALLOC_ARENA_MAX";
    if std::env::var_os(ARENAS).is_some() {
        return;
    }
    let Ok(executable) = std::env::current_exe() else {
        return;
    };
    // `exec` replaces this process (same pid) and returns only on failure.
    let _failed = std::process::Command::new(executable)
        .args(std::env::args_os().skip(1))
        .env(ARENAS, "2")
        .exec();
}
