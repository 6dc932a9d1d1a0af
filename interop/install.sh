#!/usr/bin/env bash
# Installs the interop suite's client libraries the way their users install
# them, and builds what needs building. Idempotent and cached: a second run
# on the same machine does no network access and takes about a second.
#
#   Debian packages (apt-get): Go + rabbitmq/amqp091-go, Ruby + Bunny,
#       PHP + php-amqplib, rabbitmq-c's amqp-tools, openssl (the TLS
#       scenarios' certificates)
#   PyPI (pip, into interop/.venv): pika, aio-pika, celery/kombu (pinned in
#       python/requirements.txt)
#   npm (npm ci, into interop/node/node_modules): amqplib (pinned by
#       node/package-lock.json)
#   Go: interop/go is built offline in GOPATH mode against Debian's
#       /usr/share/gocode (GO111MODULE=off, GOPROXY=off): no module proxy.
#
# Usage: install.sh [--versions]   (--versions: also print what is installed)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$here/.cache"
mkdir -p "$cache"

log() { echo "install.sh: $*" >&2; }

# --- Debian packages ---------------------------------------------------------
apt_packages=(
    golang-go golang-github-rabbitmq-amqp091-go-dev
    ruby ruby-bunny
    php-cli php-amqplib php-bcmath php-mbstring
    amqp-tools
    openssl  # tls-certs.sh; Python, Node, Go, Ruby (libruby) and PHP (php-cli) have TLS built in
)
missing=()
for pkg in "${apt_packages[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
        log "missing Debian packages (need root to install): ${missing[*]}"
        exit 2
    fi
    sudo_=""
    [[ $(id -u) -ne 0 ]] && sudo_="sudo"
    log "installing Debian packages: ${missing[*]}"
    $sudo_ apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$cache/apt-get.log" 2>&1 \
        || { tail -n 20 "$cache/apt-get.log" >&2; exit 2; }
fi

# --- Python (PyPI) -----------------------------------------------------------
# Reinstall only when the pinned requirements changed.
venv="$here/.venv"
requirements="$here/python/requirements.txt"
stamp="$venv/.installed-requirements.txt"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if ! cmp -s "$requirements" "$stamp"; then
    log "installing python/requirements.txt into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi

# --- Node.js (npm) -----------------------------------------------------------
node_dir="$here/node"
if [[ -f "$node_dir/package-lock.json" ]]; then
    if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.interop-lock.json"; then
        log "npm ci in $node_dir"
        (cd "$node_dir" && npm ci --silent --no-audit --no-fund >/dev/null)
        cp "$node_dir/package-lock.json" "$node_dir/node_modules/.interop-lock.json"
    fi
fi

# --- Go (Debian's amqp091-go, GOPATH mode, offline) ---------------------------
export GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS=
export GOCACHE="${INTEROP_GOCACHE:-$cache/go-build}"
mkdir -p "$cache/bin"
# go build is itself cached (GOCACHE): a no-change rebuild takes well under a second.
(cd "$here/go" && go build -o "$cache/bin/interop-go" .)

if [[ "${1:-}" == "--versions" ]]; then
    deb() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null | sed 's/-[^-]*$//'; }
    py() { "$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
    node_amqplib="$(node -p "require(\"$node_dir/node_modules/amqplib/package.json\").version")"
    echo "clients:"
    echo "  pika $(py pika), aio-pika $(py aio-pika) (aiormq $(py aiormq)), celery $(py celery) / kombu $(py kombu) (py-amqp $(py amqp)); python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')"
    echo "  amqplib $node_amqplib; node $(node --version)"
    echo "  amqp091-go $(deb golang-github-rabbitmq-amqp091-go-dev); $(go version | awk '{print $3}')"
    echo "  bunny $(deb ruby-bunny) (amq-protocol $(deb ruby-amq-protocol)); ruby $(ruby -e 'print RUBY_VERSION')"
    echo "  php-amqplib $(deb php-amqplib); php $(php -r 'echo PHP_VERSION;')"
    echo "  rabbitmq-c (amqp-tools) $(deb amqp-tools)"
fi
