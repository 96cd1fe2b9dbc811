#!/usr/bin/env python3
"""Subscribe to an MQTT topic with paho-mqtt 2.x and print each payload as one line.

The Python reference pair of examples/pipebench. stdout is flushed after every
message: on a pipe Python buffers it in blocks, which would hold lines back and show
up as latency that is not the network's.
"""
import argparse
import sys

import paho.mqtt.client as mqtt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=1883)
    ap.add_argument("-t", "--topic", required=True)
    ap.add_argument("-q", "--qos", type=int, default=0, choices=(0, 1, 2))
    ap.add_argument("-C", "--count", type=int, default=0,
                    help="exit after this many messages (0: never)")
    opts = ap.parse_args()

    out = sys.stdout.buffer
    seen = 0

    def on_connect(client, userdata, flags, reason, properties):
        if reason.is_failure:
            print(f"paho_sub: the broker refused: {reason}", file=sys.stderr)
            client.disconnect()
        else:
            client.subscribe(opts.topic, qos=opts.qos)

    def on_message(client, userdata, msg):
        nonlocal seen
        out.write(msg.payload + b"\n")
        out.flush()
        seen += 1
        if opts.count and seen >= opts.count:
            client.disconnect()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(opts.host, opts.port)
    try:
        client.loop_forever()
    except (BrokenPipeError, KeyboardInterrupt):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
