#!/usr/bin/env bash
# Benchmarks the chat pair against mosquitto's clients (and paho) with the shared
# pipebench harness, and measures the broker's own ceiling. Not part of CI: it takes
# several minutes and wants an otherwise idle machine.
#
#   bench/run.sh                      # full run: results in bench/results/<date>.{md,json}
#   bench/run.sh --scenarios throughput --qos 1 --count 20000 --repeats 3   # quick look
#
# Needs: mosquitto, mosquitto-clients, GNU time, python3 with paho-mqtt 2.x
# (apt-get install -y mosquitto mosquitto-clients time && pip install paho-mqtt).
# PIPEBENCH may point at pipebench.py (default: ../shared/bench/pipebench.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PIPEBENCH=${PIPEBENCH:-../shared/bench/pipebench.py}
cargo build --release --quiet --bins --example ceiling
mkdir -p bench/results
stamp=$(date -u +%Y-%m-%dT%H%MZ)
out=bench/results/$stamp

pub="$PWD/target/release/chat-pub -b mqtt://{host}:{port} -q {qos} {topic}"
sub="$PWD/target/release/chat-sub -b mqtt://{host}:{port} -q {qos} -n {count} {topic}"
python3 "$PIPEBENCH" --pair chat "$pub" "$sub" \
  --builtin mosquitto --builtin mosquitto-split --builtin paho \
  --json "$out.json" "$@" | tee "$out.md"

# The broker's ceiling: near-free clients (examples/ceiling.rs) against a mosquitto
# configured like pipebench's.
dir=$(mktemp -d)
trap 'kill "$broker" 2>/dev/null; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 10000000\nset_tcp_nodelay true\n' \
  "$port" > "$dir/mosquitto.conf"
mosquitto -c "$dir/mosquitto.conf" 2> "$dir/log" & broker=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
{
  echo
  echo "## Broker ceiling (examples/ceiling.rs, 100,000 x 100 B, 3 runs each)"
  for qos in 0 1; do
    for _ in 1 2 3; do
      target/release/examples/ceiling --port "$port" --count 100000 --qos "$qos"
    done
  done
} | tee -a "$out.md"
echo "results: $out.md $out.json"
