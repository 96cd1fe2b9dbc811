#!/usr/bin/env python3
"""An MQTT 5 client for the tests of message properties: paho-mqtt (1.x or 2.x) as the
other side, which sets and reads properties as any MQTT 5 program would.

    mqtt5_props.py --port P sub TOPIC
        Subscribes at QoS 1; says "subscribed" on stderr once acknowledged; prints each
        message as one JSON line: {"payload": TEXT, "user": [[K, V], ...],
        "content_type": ..., "message_expiry": N, "response_topic": ...,
        "correlation_data_hex": HEX}, each property only when the message has it.

    mqtt5_props.py --port P pub TOPIC --payload TEXT [--user K=V ...] [--content-type T]
        [--message-expiry N] [--response-topic T] [--correlation-hex HEX]
        Publishes one message at QoS 1 with these properties, waits for its PUBACK, exits 0.
"""
import argparse
import json
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def client():
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    return mqtt.Client(protocol=mqtt.MQTTv5)


def shown(msg) -> dict:
    out = {"payload": msg.payload.decode("utf-8", errors="replace")}
    p = getattr(msg, "properties", None)
    if p is None:
        return out
    user = getattr(p, "UserProperty", None)
    if user:
        out["user"] = [list(kv) for kv in user]
    for attr, key in [
        ("ContentType", "content_type"),
        ("MessageExpiryInterval", "message_expiry"),
        ("ResponseTopic", "response_topic"),
    ]:
        if hasattr(p, attr):
            out[key] = getattr(p, attr)
    if hasattr(p, "CorrelationData"):
        out["correlation_data_hex"] = bytes(p.CorrelationData).hex()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("sub")
    s.add_argument("topic")
    p = sub.add_parser("pub")
    p.add_argument("topic")
    p.add_argument("--payload", required=True)
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--content-type")
    p.add_argument("--message-expiry", type=int)
    p.add_argument("--response-topic")
    p.add_argument("--correlation-hex")
    opts = ap.parse_args()

    c = client()
    ready = threading.Event()

    def on_connect(cl, userdata, flags, reason, *rest):
        if opts.mode == "sub":
            cl.subscribe(opts.topic, qos=1)
        else:
            ready.set()

    def on_subscribe(cl, userdata, mid, *rest):
        print("subscribed", file=sys.stderr, flush=True)

    def on_message(cl, userdata, msg):
        print(json.dumps(shown(msg)), flush=True)

    c.on_connect = on_connect
    c.on_subscribe = on_subscribe
    c.on_message = on_message
    c.connect(opts.host, opts.port)
    if opts.mode == "sub":
        c.loop_forever()
        return 0
    c.loop_start()
    if not ready.wait(timeout=30):
        print("mqtt5_props: not connected within 30 s", file=sys.stderr, flush=True)
        return 1
    props = Properties(PacketTypes.PUBLISH)
    if opts.user:
        props.UserProperty = [tuple(kv.split("=", 1)) for kv in opts.user]
    if opts.content_type is not None:
        props.ContentType = opts.content_type
    if opts.message_expiry is not None:
        props.MessageExpiryInterval = opts.message_expiry
    if opts.response_topic is not None:
        props.ResponseTopic = opts.response_topic
    if opts.correlation_hex is not None:
        props.CorrelationData = bytes.fromhex(opts.correlation_hex)
    info = c.publish(opts.topic, opts.payload.encode(), qos=1, properties=props)
    info.wait_for_publish(timeout=30)
    c.disconnect()
    c.loop_stop()
    return 0 if info.is_published() else 1


if __name__ == "__main__":
    sys.exit(main())
