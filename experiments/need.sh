# Sourced by the experiment scripts: checks for the host tools they use and says what is missing and how to get it.
# Nothing is installed here: installing packages is the user's decision (and needs root).
# need CMD PACKAGE [optional]: a missing required tool ends the script (exit 127); an optional one only warns.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "${3:-}" = optional ]; then
    echo "note: $1 not found (Debian/Ubuntu: apt-get install $2); continuing without it" >&2
    return 1
  fi
  echo "missing: $1 (Debian/Ubuntu: apt-get install $2), needed for the QEMU side of this comparison" >&2
  exit 127
}
