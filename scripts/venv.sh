# Sourced by scripts/run and scripts/test: make .venv (once) and install the project into it,
# pinned by constraints.txt so a fresh clone installs what CI tested.
# Usage: ensure_venv ''   |   ensure_venv '[test]'
ensure_venv() {
  local extras=$1
  local python=${PYTHON:-python3}
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "lifeaccount needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "rebuilding .venv: it was made with an older Python" >&2
    rm -rf .venv
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
      # Debian's python3 ships venv separately.
      rm -rf .venv
      if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
      "$python" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".${extras}"
}

# The browser libraries the pages load from /vendor (hls.js, tus-js-client), pinned by
# package-lock.json: `npm ci` runs when node_modules is missing or the lock changed since the
# last install (a digest of the lock is kept inside node_modules).
ensure_node_modules() {
  local stamp=node_modules/.lifeaccount-lock.sha256
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  if ! command -v npm >/dev/null; then
    echo "installing Node.js and npm (Debian's), for the pages' browser libraries" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
  fi
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
}

# The widget SDK bundle (components/dist, served at /sdk/lifeaccount.js), rebuilt with the
# npm-installed esbuild when its sources changed.
ensure_sdk() {
  node components/build.mjs --if-stale
}
