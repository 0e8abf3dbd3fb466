# Sourced by scripts/setup.sh and scripts/infra.sh: the one way this project installs a Debian package it
# needs (ffmpeg for the main job; redis-server, Java, Maven, kcat, prometheus for the tests).
# The caller defines log() and die() (its own prefix) before sourcing this file.
#   apt_install PKG...     install PKG with apt-get (as root, or with passwordless sudo), quietly, on stderr
#   apt_can_install        exit 0 when apt_install can work here (apt-get present, root or passwordless sudo)
# FACEFLOW_APT=0 turns installing off: apt_can_install then says no, and the caller prints what to install.
APT_UPDATED=0

apt_sudo() {
  if [ "$(id -u)" -eq 0 ]; then echo ""; return 0; fi
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && { echo "sudo -n"; return 0; }
  return 1
}

apt_can_install() {
  [ "${FACEFLOW_APT:-1}" != 0 ] || return 1
  command -v apt-get >/dev/null 2>&1 || return 1
  apt_sudo >/dev/null
}

apt_install() {
  [ "${FACEFLOW_APT:-1}" != 0 ] || die "$* not installed, and FACEFLOW_APT=0 forbids installing it: install $* yourself"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* yourself"
  local sudo
  sudo="$(apt_sudo)" || die "need root (or passwordless sudo) to apt-get install $*; install it yourself: sudo apt-get install $*"
  log "apt-get install $*"
  if [ "$APT_UPDATED" -eq 0 ]; then
    $sudo apt-get update -qq >&2 || log "apt-get update failed; trying the install anyway"
    APT_UPDATED=1
  fi
  # Debian's redis-server package tries to start the system-wide service; a policy-rc.d would stop that, but
  # in a container without init it simply fails harmlessly, and on a real host it listens on 6379, not ours.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2 \
    || die "apt-get install $* failed (see above); install it yourself and run again"
}
