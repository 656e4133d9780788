//! The `knetsim` binary: everything lives in the library so that tests run the CLI in-process.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = knetsim::main_with(args, &mut out, &mut err);
    std::process::exit(code);
}
