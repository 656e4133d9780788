//! The `knetsim` binary: everything lives in the library so that tests run the CLI in-process.

/// A limits-scale cluster is millions of small strings and maps; glibc's allocator spent a
/// fifth of `knetsim run` allocating and freeing them (perf), mimalloc much less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // In a GitHub Actions job, problems are also printed as workflow commands (annotations).
    knetsim::set_github_actions(std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true"));
    // Stdout is line-buffered; a state document has millions of lines.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut err = std::io::stderr().lock();
    let code = knetsim::main_with(args, &mut out, &mut err);
    if let Err(e) = std::io::Write::flush(&mut out) {
        // A closed pipe (`knetsim run x | head`) is not an error worth a message.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: {e}");
            std::process::exit(knetsim::EXIT_INVALID);
        }
    }
    std::process::exit(code);
}
