"""An independent reader (kafka-python) of a Sluice Kafka channel's topic.

    kafka_channel_peer.py SERVERS TOPIC PARTITIONS N

Reads N records from the start of every partition of TOPIC and decodes each value as Flume's
AvroFlumeEvent ({"headers": map<string>, "body": bytes}) by the Avro specification's binary
encoding, by hand here (zig-zag varints, blocks of map entries, length-prefixed strings and
bytes), so nothing of Sluice's Avro code is involved. Prints one JSON line per record:
{"headers": {...}, "body": "...", "key": ...}. Exits non-zero if a value does not decode or
fewer than N records arrive in 30 s.
"""

import json
import sys

from kafka import KafkaConsumer, TopicPartition

API_VERSION = (2, 0, 0)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def long(self):
        shift = 0
        acc = 0
        while True:
            if self.pos >= len(self.data):
                raise ValueError("truncated varint")
            b = self.data[self.pos]
            self.pos += 1
            acc |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return (acc >> 1) ^ -(acc & 1)

    def bytes(self):
        n = self.long()
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("bad length")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def string(self):
        return self.bytes().decode("utf-8")


def decode_flume_event(data):
    r = Reader(data)
    headers = {}
    while True:
        count = r.long()
        if count == 0:
            break
        if count < 0:
            count = -count
            r.long()  # block size in bytes
        for _ in range(count):
            k = r.string()
            headers[k] = r.string()
    body = r.bytes()
    if r.pos != len(data):
        raise ValueError("trailing bytes")
    return headers, body


def main(servers, topic, partitions, n):
    consumer = KafkaConsumer(
        bootstrap_servers=servers,
        enable_auto_commit=False,
        api_version=API_VERSION,
        auto_offset_reset="earliest",
        consumer_timeout_ms=30000,
    )
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek_to_beginning(tp)
    got = 0
    for record in consumer:
        headers, body = decode_flume_event(record.value)
        print(
            json.dumps(
                {
                    "headers": headers,
                    "body": body.decode("utf-8"),
                    "key": record.key.decode("utf-8") if record.key is not None else None,
                }
            ),
            flush=True,
        )
        got += 1
        if got == n:
            break
    consumer.close()
    if got != n:
        sys.exit(f"only {got} of {n} records")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
