# Daemon helpers shared by scripts/s3/server.sh and scripts/emulators/server.sh: pid
# files that identify a process for good (pid + kernel start time), readiness polling,
# stopping with TERM then KILL, log tails. The caller defines log(), W (its workdir) and
# START_TIMEOUT (seconds), MARKER (the file that marks a workdir as ours), and may set
# STOP_TIMEOUT (seconds, default 15).

# Running, and not a zombie: our daemons are reparented to PID 1, and a PID 1
# that reaps lazily (this VM's init takes ~1.3 s) leaves exited daemons as
# zombies that `kill -0` still reports.
pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Kernel start time of a pid (field 22 of /proc/PID/stat): with the pid it
# identifies a process for good, so `stop` never signals a recycled pid.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) } # the command name may hold spaces; fields restart after ") "
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

# True when the pid file's process still runs (same pid, same start time).
pidfile_alive() {
  local pid started
  read -r pid started <"$1" 2>/dev/null || return 1
  [ -n "$pid" ] && pid_alive "$pid" && [ "$(start_time "$pid")" = "$started" ]
}

# wait_for <what> <pid-or-empty> <command...>: poll the command until it
# succeeds; give up after START_TIMEOUT seconds or when the daemon died.
wait_for() {
  local what=$1 pid=$2 deadline=$((SECONDS + START_TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! pid_alive "$pid"; then
      log "$what: process $pid exited"; return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what: not ready after ${START_TIMEOUT}s"; return 1
    fi
    sleep 0.2
  done
}

# stop_pids <pidfile>...: TERM every live process named at once, wait up to
# STOP_TIMEOUT s, then KILL what is left and wait for that too.
stop_pids() {
  local f pid i
  local -a pids=()
  for f in "$@"; do
    [ -e "$f" ] || continue
    if pidfile_alive "$f"; then
      read -r pid _ <"$f"
      pids+=("$pid")
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  [ ${#pids[@]} -gt 0 ] || { rm -f "$@"; return 0; }
  for ((i = 0; i < ${STOP_TIMEOUT:-15} * 10; i++)); do
    any_alive "${pids[@]}" || break
    sleep 0.1
  done
  if any_alive "${pids[@]}"; then
    log "ignored SIGTERM for ${STOP_TIMEOUT:-15}s, sending SIGKILL: $(alive_of "${pids[@]}")"
    # shellcheck disable=SC2046
    kill -KILL $(alive_of "${pids[@]}") 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do any_alive "${pids[@]}" || break; sleep 0.1; done
  fi
  if any_alive "${pids[@]}"; then
    log "still alive after SIGKILL: $(alive_of "${pids[@]}")"
    return 1
  fi
  rm -f "$@"
}

any_alive() { [ -n "$(alive_of "$@")" ]; }

alive_of() {
  local p out=()
  for p in "$@"; do pid_alive "$p" && out+=("$p"); done
  echo "${out[*]}"
}

# Print the tail of every log so a failed start explains itself.
dump_logs() {
  local f
  for f in "$W"/log/*; do
    [ -s "$f" ] || continue
    printf '==> %s (last 20 lines) <==\n' "$f" >&2
    tail -n 20 "$f" >&2
  done
}

# prepare_workdir [extra-file...]: refuse to start over a live instance, or in a non-empty
# directory that is not ours (start wipes data/ and log/); otherwise clear what a previous
# start left (and the extra files named).
prepare_workdir() {
  local f
  mkdir -p "$W"
  if [ ! -e "$W/$MARKER" ] && [ -n "$(ls -A "$W")" ]; then
    die "$W is not empty and was not made by server.sh: use a dedicated directory"
  fi
  for f in "$W"/pids/*.pid; do
    [ -e "$f" ] || continue
    if pidfile_alive "$f"; then
      die "$W already runs a server ($(basename "$f" .pid)): stop it first"
    fi
  done
  rm -rf "$W/data" "$W/log" "$W/pids" "$W/env" "$@"
  mkdir -p "$W/data" "$W/log" "$W/pids"
  touch "$W/$MARKER"
}
