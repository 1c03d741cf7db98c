# shellcheck shell=bash
# Installing Debian packages from the project's scripts.
#
#     source scripts/lib/apt.sh
#     telemed_apt_install nodejs npm
#
# Runs apt-get as root, or through sudo; tries without `apt-get update` first (fast when the
# package lists are fresh) and updates them once if that fails. Returns non-zero when the
# packages cannot be installed (no apt-get, not root and no sudo, or apt-get failed).

# Runs "$@" as root (directly, or through sudo), or returns 1.
telemed_as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        return 1
    fi
}

# Installs Debian packages "$@".
telemed_apt_install() {
    command -v apt-get >/dev/null || return 1
    telemed_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
        || { telemed_as_root apt-get update -q >/dev/null \
            && telemed_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}
