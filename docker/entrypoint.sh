#!/bin/sh
# Warren's container entrypoint: what the official rabbitmq:3-management
# image gives Testcontainers and compose files, for a broker that is one
# binary.
#
#   docker run warren                      # the CMD is rabbitmq-server
#   docker run warren rabbitmq-server ARGS # ARGS go to `warren serve`
#   docker run warren --log-level debug    # so do leading flags
#   docker run warren rabbitmqctl ...      # anything else is exec'ed as is
#
# What it honours (the binary reads the env vars itself):
#   RABBITMQ_DEFAULT_USER / _PASS / _VHOST, RABBITMQ_NODE_PORT;
#   /etc/rabbitmq/rabbitmq.conf, or RABBITMQ_CONFIG_FILE (".conf" optional),
#     then /etc/rabbitmq/conf.d/*.conf in name order, later keys winning,
#     as RabbitMQ reads them; `load_definitions = FILE` in them imports FILE;
#   /etc/rabbitmq/enabled_plugins (RABBITMQ_ENABLED_PLUGINS_FILE): read and
#     logged; Warren has no plugins, management and Prometheus are built in;
#   /var/lib/rabbitmq as the data directory (WARREN_DATA_DIR overrides).
#     Nothing in it depends on the hostname: a renamed container keeps its data.
# The broker is exec'ed, so it is PID 1 and gets docker stop's SIGTERM.
set -eu

log() { echo "warren-entrypoint: $*" >&2; }

case "${1:-rabbitmq-server}" in
  rabbitmq-server) [ "$#" -gt 0 ] && shift ;;
  -*) ;;
  *) exec "$@" ;;
esac

etc=/etc/rabbitmq

# The config: the main file, then conf.d. Warren takes one file, so when
# conf.d has files they are joined into one private temporary file, in
# RabbitMQ's order (main file first, later keys win).
main=${RABBITMQ_CONFIG_FILE:-$etc/rabbitmq.conf}
if [ ! -e "$main" ] && [ -e "$main.conf" ]; then
  main=$main.conf
fi
if [ ! -e "$main" ]; then
  if [ -n "${RABBITMQ_CONFIG_FILE:-}" ]; then
    log "RABBITMQ_CONFIG_FILE=$RABBITMQ_CONFIG_FILE: no such file"
    exit 1
  fi
  main=
fi
parts=
[ -n "$main" ] && parts=$main
for f in "$etc"/conf.d/*.conf; do
  [ -f "$f" ] && parts="$parts${parts:+ }$f"
done
unset RABBITMQ_CONFIG_FILE
config=
case "$parts" in
  "") ;;
  *" "*)
    # Shell built-ins only (no mktemp or cat): each fork costs a container's
    # start a millisecond or two. The container's own /tmp: a restart (PID 1
    # again) overwrites the previous start's file.
    config=${TMPDIR:-/tmp}/warren-rabbitmq.$$.conf
    for f in $parts; do
      printf '## from %s\n' "$f"
      while IFS= read -r line || [ -n "$line" ]; do
        printf '%s\n' "$line"
      done <"$f"
    done >"$config"
    log "config files, in order: $parts (joined in $config)"
    ;;
  *)
    config=$parts
    log "config file: $config"
    ;;
esac

plugins=${RABBITMQ_ENABLED_PLUGINS_FILE:-$etc/enabled_plugins}
if [ -r "$plugins" ]; then
  # An Erlang list: [rabbitmq_management,rabbitmq_prometheus]. Split with
  # the shell's own IFS, not tr and sed: two forks are a millisecond or two.
  content=
  while IFS= read -r line || [ -n "$line" ]; do
    content="$content $line"
  done <"$plugins"
  names=
  set -f
  saved_ifs=$IFS
  IFS='[]., 	
'
  for name in $content; do
    [ -n "$name" ] && names="$names${names:+, }$name"
  done
  IFS=$saved_ifs
  set +f
  log "$plugins lists: ${names:-no plugins}. Warren has no plugins: management" \
    "and Prometheus are built in, the others are ignored"
fi

: "${WARREN_DATA_DIR:=/var/lib/rabbitmq}"
export WARREN_DATA_DIR
[ -d "$WARREN_DATA_DIR" ] || mkdir -p "$WARREN_DATA_DIR"

if [ -n "$config" ]; then
  exec warren serve --config "$config" "$@"
fi
exec warren serve "$@"
