//! The `kando` binary: everything lives in the library; this only sets the exit status.

fn main() {
    std::process::exit(kando::cli::main());
}
