"""An independent ThriftSourceProtocol client (thriftpy2, Flume's IDL loaded at run time):
sends BATCHES appendBatch calls of BATCH_SIZE events each, then one append, to a thrift
source, with framed transport and the given protocol. Every event has headers
{"tag": TAG, "seq": N} and the body "TAG-N". Prints one line per call: the method and the
status name; exits 1 unless every call was answered OK."""

import argparse
import os
import sys

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.transport import TFramedTransportFactory

HERE = os.path.dirname(os.path.abspath(__file__))
flume = thriftpy2.load(os.path.join(HERE, "flume.thrift"), module_name="flume_thrift")
STATUS_NAMES = {v: k for k, v in flume.Status._NAMES_TO_VALUES.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--protocol", choices=["compact", "binary"], required=True)
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--tag", default="py")
    a = p.parse_args()
    proto = TCompactProtocolFactory() if a.protocol == "compact" else TBinaryProtocolFactory()
    client = make_client(
        flume.ThriftSourceProtocol,
        "127.0.0.1",
        a.port,
        proto_factory=proto,
        trans_factory=TFramedTransportFactory(),
        timeout=20000,
    )
    ok = True
    seq = 0
    for _ in range(a.batches):
        events = []
        for _ in range(a.batch_size):
            events.append(
                flume.ThriftFlumeEvent(
                    headers={"tag": a.tag, "seq": str(seq)},
                    body=("%s-%d" % (a.tag, seq)).encode(),
                )
            )
            seq += 1
        status = client.appendBatch(events)
        print("appendBatch", STATUS_NAMES.get(status, status))
        ok = ok and status == flume.Status.OK
    status = client.append(
        flume.ThriftFlumeEvent(
            headers={"tag": a.tag, "seq": str(seq)}, body=("%s-%d" % (a.tag, seq)).encode()
        )
    )
    print("append", STATUS_NAMES.get(status, status))
    ok = ok and status == flume.Status.OK
    client.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
