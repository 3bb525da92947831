"""An independent Kafka client (kafka-python) on the other end of Sluice's Kafka sink and source.

    kafka_peer.py consume SERVERS TOPIC N [auto]   prints N records of TOPIC (from the start) as JSON lines
    kafka_peer.py produce SERVERS TOPIC N [auto]   sends N records p<i> with key pk<i>, header trace-id=pt<i>

`auto` lets kafka-python probe the broker's API versions (a real broker, tests/kafka_broker.rs);
without it the servers are librdkafka's mock cluster. kafka-python 3.0.12 probes the broker with ApiVersions
v4; the mock answers UNSUPPORTED_VERSION in the v0 layout, which kafka-python cannot decode, so
the protocol is pinned with api_version=(2, 0, 0) (record headers need 0.11 or later; 2.5 picks
Fetch versions the mock does not serve). Exits non-zero if it cannot get all N records in 30 s.
"""

API_VERSION = (2, 0, 0)

import json
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def consume(servers, topic, n, api_version):
    consumer = KafkaConsumer(
        bootstrap_servers=servers,
        enable_auto_commit=False,
        api_version=api_version,
        auto_offset_reset="earliest",
        consumer_timeout_ms=30000,
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = 0
    for record in consumer:
        print(
            json.dumps(
                {
                    "value": record.value.decode("utf-8"),
                    "key": record.key.decode("utf-8") if record.key is not None else None,
                    "headers": {k: v.decode("utf-8") for k, v in record.headers},
                    "partition": record.partition,
                    "offset": record.offset,
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


def produce(servers, topic, n, api_version):
    producer = KafkaProducer(bootstrap_servers=servers, acks=1, linger_ms=0, api_version=api_version)
    futures = [
        producer.send(
            topic,
            value=f"p{i}".encode(),
            key=f"pk{i}".encode(),
            headers=[("trace-id", f"pt{i}".encode())],
            partition=0,
        )
        for i in range(n)
    ]
    for f in futures:
        f.get(timeout=30)
    producer.close()


def main():
    mode, servers, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    api_version = None if sys.argv[5:] == ["auto"] else API_VERSION
    if mode == "consume":
        consume(servers, topic, n, api_version)
    elif mode == "produce":
        produce(servers, topic, n, api_version)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
