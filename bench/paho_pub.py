#!/usr/bin/env python3
"""Read lines on stdin and publish each one as an MQTT message with paho-mqtt 2.x.

The Python reference pair of examples/pipebench: it exits once every line is sent
(QoS 0: handed to the socket) or acknowledged by the broker (QoS 1 and 2).
"""
import argparse
import sys
import threading

import paho.mqtt.client as mqtt

# paho numbers messages with 16-bit ids and does not check for ids still in use:
# more than 65,535 unacknowledged QoS 1 messages would collide (publish() then fails
# with MQTT_ERR_QUEUE_SIZE). A window of 1,000 in flight keeps well clear of that.
IN_FLIGHT = 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=1883)
    ap.add_argument("-t", "--topic", required=True)
    ap.add_argument("-q", "--qos", type=int, default=0, choices=(0, 1, 2))
    opts = ap.parse_args()

    window = threading.Semaphore(IN_FLIGHT)
    ready = threading.Event()

    def on_connect(client, userdata, flags, reason, properties):
        if reason.is_failure:
            print(f"paho_pub: the broker refused: {reason}", file=sys.stderr)
        else:
            ready.set()

    def on_publish(client, userdata, mid, reason, properties):
        window.release()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect(opts.host, opts.port)
    client.loop_start()
    if not ready.wait(10):
        print("paho_pub: not connected after 10 s", file=sys.stderr)
        return 1

    for line in sys.stdin.buffer:
        window.acquire()
        info = client.publish(opts.topic, line.rstrip(b"\r\n"), qos=opts.qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            print(f"paho_pub: {mqtt.error_string(info.rc)}", file=sys.stderr)
            return 1

    # The window is whole again once the last message is done.
    for _ in range(IN_FLIGHT):
        if not window.acquire(timeout=30):
            print("paho_pub: messages still unacknowledged after 30 s", file=sys.stderr)
            return 1
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
