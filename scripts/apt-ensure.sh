# Sourced by the build and test scripts: `apt_ensure PKG…` installs the Debian packages that
# are missing, as root or through `sudo -n`, with no stdin. It refreshes the package lists
# only when the first attempt fails (a fresh container has none). Callers define `log`.

apt_ensure() {
  local missing=() sudo=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2 ||
    { "${sudo[@]}" apt-get update -q </dev/null >&2 &&
      "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2; }
}
