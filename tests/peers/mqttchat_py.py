#!/usr/bin/env python3
"""A member of a room of the original MQTTChat, for the tests: paho-mqtt (1.x or 2.x) speaking
that program's payloads (written here from its documented format, not copied).

- On connecting it publishes the notice "noticia,NAME entrou neste tópico".
- Each line of stdin is published as "NAME,LINE", at QoS 0, as the original does.
- Each message received on the room is printed on stdout as the original shows it:
  "NAME: TEXT" for "NAME,TEXT", the text after "noticia," alone for a notice, and a
  payload without a comma as "? PAYLOAD" (the original fails on those).

stderr says "subscribed" once the subscription is acknowledged (the tests wait for it).
At the end of stdin it waits until every line was written, disconnects and exits 0.

    mqttchat_py.py --port 1883 --name seeduser ROOM
"""
import argparse
import sys
import threading

import paho.mqtt.client as mqtt

NOTICE = "noticia,"


def show(payload: bytes) -> str:
    text = payload.decode("utf-8", errors="replace")
    if text.startswith(NOTICE):
        return text[len(NOTICE):]
    if "," not in text:
        return "? " + text
    name, said = text.split(",", 1)
    return f"{name}: {said}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--name", required=True)
    ap.add_argument("room")
    opts = ap.parse_args()

    subscribed = threading.Event()

    def on_connect(client, userdata, flags, reason, *properties):
        # paho 2.x passes a ReasonCode, 1.x an int (0: accepted).
        failed = reason != 0 if isinstance(reason, int) else reason.is_failure
        if failed:
            print(f"mqttchat_py: the broker refused: {reason}", file=sys.stderr, flush=True)
            client.disconnect()
            return
        client.subscribe(opts.room, qos=0)
        client.publish(opts.room, f"{NOTICE}{opts.name} entrou neste tópico".encode(), qos=0)

    def on_subscribe(client, userdata, mid, *codes):
        print("subscribed", file=sys.stderr, flush=True)
        subscribed.set()

    def on_message(client, userdata, msg):
        print(show(msg.payload), flush=True)

    if hasattr(mqtt, "CallbackAPIVersion"):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    else:
        client = mqtt.Client(protocol=mqtt.MQTTv311)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(opts.host, opts.port)
    client.loop_start()
    if not subscribed.wait(timeout=60):
        print("mqttchat_py: no subscription within 60 s", file=sys.stderr, flush=True)
        return 1
    sent = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line:
            sent.append(client.publish(opts.room, f"{opts.name},{line}".encode(), qos=0))
    for info in sent:
        info.wait_for_publish()
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
