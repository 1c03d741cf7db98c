# shellcheck shell=bash
# Building the web app (web/) into web/dist, which `telemed serve` serves at `/`.
#
#     source scripts/lib/web.sh
#     telemed_build_web
#
# Builds only when the app's sources changed since the last build: a SHA-256 over web/src,
# web/public, web/index.html, web/package.json, web/package-lock.json and the build configs
# (vite.config.*, tsconfig*.json) is kept in web/dist/.build-stamp. `npm ci` runs when
# web/node_modules is missing or was installed from another package-lock.json. Debian's
# nodejs and npm are installed when `node` or `npm` is missing. Without web/package.json
# there is no app to build: it says so and returns 0. Returns non-zero when a step fails
# (every step is checked explicitly, so callers may use `telemed_build_web || …`, where
# `set -e` does not apply).

_TELEMED_WEB_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/lib/apt.sh
source "$_TELEMED_WEB_REPO/scripts/lib/apt.sh"

_telemed_web_log() { printf 'telemed-web: %s\n' "$*" >&2; }

# Prints the hash of the app's sources (run inside web/).
_telemed_web_sources_hash() {
    {
        find src public -type f -print0 2>/dev/null
        find . -maxdepth 1 -type f \( -name index.html -o -name package.json \
            -o -name package-lock.json -o -name 'vite.config.*' -o -name 'tsconfig*.json' \) \
            -print0
    } | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1
}

# Installs Debian's nodejs and npm when either is missing.
_telemed_web_ensure_node() {
    command -v node >/dev/null && command -v npm >/dev/null && return 0
    _telemed_web_log "installing Debian's nodejs and npm"
    telemed_apt_install nodejs npm || {
        _telemed_web_log "could not install nodejs and npm (run as root, or install them)"
        return 1
    }
}

# `npm ci` unless web/node_modules was installed from this package-lock.json (run inside web/).
_telemed_web_install() {
    if [[ -f package-lock.json ]] && cmp -s package-lock.json node_modules/.installed-lock.json; then
        return 0
    fi
    _telemed_web_log "npm ci (web/node_modules missing or stale)"
    npm ci --no-audit --no-fund --loglevel=error >&2 || return 1
    if [[ -f package-lock.json ]]; then
        mkdir -p node_modules && cp package-lock.json node_modules/.installed-lock.json
    fi
}

# Builds web/dist when its sources changed since the last build.
telemed_build_web() {
    local web="$_TELEMED_WEB_REPO/web"
    if [[ ! -f "$web/package.json" ]]; then
        _telemed_web_log "no web/package.json: no web app to build; the server serves the API only"
        return 0
    fi
    (
        cd "$web" || exit 1
        hash="$(_telemed_web_sources_hash)" || exit 1
        if [[ -f dist/index.html && "$(cat dist/.build-stamp 2>/dev/null)" == "$hash" ]]; then
            _telemed_web_log "web/dist is up to date"
            exit 0
        fi
        _telemed_web_ensure_node || exit 1
        _telemed_web_install || { _telemed_web_log "npm ci failed"; exit 1; }
        _telemed_web_log "npm run build"
        npm run build >&2 || { _telemed_web_log "npm run build failed"; exit 1; }
        [[ -f dist/index.html ]] || { _telemed_web_log "the build wrote no dist/index.html"; exit 1; }
        printf '%s\n' "$hash" >dist/.build-stamp
        _telemed_web_log "built web/dist"
    )
}
