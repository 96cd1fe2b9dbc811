#!/usr/bin/env bash
# Benchmarks the chat pair against mosquitto's clients (and paho-mqtt's) with the
# project's harness, examples/pipebench, then measures the broker's own ceiling with
# examples/ceiling.rs. Not part of CI: about 5 minutes on 2 cores, and it wants an
# otherwise idle machine.
#
#   bench/run.sh            # full run: results in bench/results/<date>.md and .json
#   bench/run.sh --scenarios throughput --qos 1 --count 20000 --repeats 3   # quick look
#
# Options go to pipebench (bench/run.sh --help lists them).
# Needs: cargo, mosquitto and mosquitto-clients
#   (apt-get install -y mosquitto mosquitto-clients).
# Optional: python3 with paho-mqtt 2.x for the paho pair (pip install paho-mqtt);
#   without it that pair is reported as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
release=${CARGO_TARGET_DIR:-target}/release
cargo build --release --quiet --bins --examples
case " $* " in
  *" --help "* | *" -h "*) exec "$release/examples/pipebench" "$@" ;;
esac
mkdir -p bench/results
out=bench/results/$(date -u +%Y-%m-%dT%H%MZ)

"$release/examples/pipebench" --chat-dir "$release" --json "$out.json" "$@" | tee "$out.md"

# The broker's ceiling: clients that cost almost nothing (examples/ceiling.rs) against a
# mosquitto configured like pipebench's own (examples/pipebench/broker.rs).
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
dir=$(mktemp -d)
broker=
trap '[ -z "$broker" ] || kill "$broker" 2>/dev/null; rm -rf "$dir"' EXIT

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free loopback port: try random ones until mosquitto listens on one.
start_broker() {
  local try poll
  for try in $(seq 20); do
    port=$((20000 + RANDOM % 40000))
    listening "$port" && continue
    printf '%s\n' "listener $port 127.0.0.1" 'allow_anonymous true' 'persistence false' \
      'max_queued_messages 10000000' 'set_tcp_nodelay true' > "$dir/mosquitto.conf"
    "$mosquitto" -c "$dir/mosquitto.conf" 2> "$dir/log" & broker=$!
    for poll in $(seq 200); do               # up to 10 s
      kill -0 "$broker" 2>/dev/null || break # it could not bind: the next port
      listening "$port" && return 0
      sleep 0.05
    done
    kill "$broker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
    broker=
  done
  echo "mosquitto did not start: $(cat "$dir/log")" >&2
  return 1
}

start_broker
{
  echo
  echo "## Broker ceiling (examples/ceiling.rs, 100,000 x 100 B, 3 runs each)"
  echo
  for qos in 0 1; do
    for _ in 1 2 3; do
      "$release/examples/ceiling" --port "$port" --count 100000 --qos "$qos" | sed "s/^/    /"
    done
  done
} | tee -a "$out.md"
echo "results: $out.md $out.json"
