//! Argument lists of the kando commands the tests run most. Extra flags go where the tests
//! have always put them: after the path, before the `-` that names standard input.

/// `location push --profile P --path PATH -`.
pub fn push_args<'a>(profile: &'a str, path: &'a str) -> Vec<&'a str> {
    push_with(profile, path, &[])
}

/// `location push --profile P --path PATH FLAGS… -`.
pub fn push_with<'a>(profile: &'a str, path: &'a str, flags: &[&'a str]) -> Vec<&'a str> {
    by_path("push", profile, path, flags, Some("-"))
}

/// `location push --profile P --path PATH --from-command COMMAND`: no input but the
/// command's output.
pub fn push_command_args<'a>(profile: &'a str, path: &'a str, command: &'a str) -> Vec<&'a str> {
    by_path("push", profile, path, &["--from-command", command], None)
}

/// `location pull --profile P --path PATH -`.
pub fn pull_args<'a>(profile: &'a str, path: &'a str) -> Vec<&'a str> {
    pull_with(profile, path, &[])
}

/// `location pull --profile P --path PATH FLAGS… -`.
pub fn pull_with<'a>(profile: &'a str, path: &'a str, flags: &[&'a str]) -> Vec<&'a str> {
    by_path("pull", profile, path, flags, Some("-"))
}

/// `location pull --profile P --path PATH TARGET`: into a file.
pub fn pull_to_args<'a>(profile: &'a str, path: &'a str, target: &'a str) -> Vec<&'a str> {
    by_path("pull", profile, path, &[], Some(target))
}

/// `location pull --profile P --kopia-snapshot SNAPSHOT -`.
pub fn pull_snapshot_args<'a>(profile: &'a str, snapshot: &'a str) -> Vec<&'a str> {
    vec![
        "location",
        "pull",
        "--profile",
        profile,
        "--kopia-snapshot",
        snapshot,
        "-",
    ]
}

/// `location delete --profile P --path PATH`.
pub fn delete_args<'a>(profile: &'a str, path: &'a str) -> Vec<&'a str> {
    by_path("delete", profile, path, &[], None)
}

/// `location delete --profile P --kopia-snapshot SNAPSHOT`.
pub fn delete_snapshot_args<'a>(profile: &'a str, snapshot: &'a str) -> Vec<&'a str> {
    vec![
        "location",
        "delete",
        "--profile",
        profile,
        "--kopia-snapshot",
        snapshot,
    ]
}

/// `repo gc --profile P FLAGS…`.
pub fn gc_args<'a>(profile: &'a str, flags: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["repo", "gc", "--profile", profile];
    args.extend_from_slice(flags);
    args
}

fn by_path<'a>(
    op: &'a str,
    profile: &'a str,
    path: &'a str,
    flags: &[&'a str],
    last: Option<&'a str>,
) -> Vec<&'a str> {
    let mut args = vec!["location", op, "--profile", profile, "--path", path];
    args.extend_from_slice(flags);
    args.extend(last);
    args
}
