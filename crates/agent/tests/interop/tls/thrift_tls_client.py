"""An independent ThriftSourceProtocol client over TLS: thriftpy2 with Flume's IDL (loaded at
run time from ../flume.thrift) over Python's ssl module (OpenSSL), framed transport. It trusts
only CAFILE, checks the server's name (HOST must match the certificate), sends BATCHES
appendBatch calls of BATCH_SIZE events each ({"tag": TAG, "seq": N}, body "TAG-N") and prints
the negotiated protocol, then one line per call: the method and the status name. Exits 1 unless
every call was answered OK; any TLS error is an exception (exit 1)."""

import argparse
import os
import ssl
import sys

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.thrift import TClient
from thriftpy2.transport import TFramedTransportFactory, TSSLSocket

HERE = os.path.dirname(os.path.abspath(__file__))
flume = thriftpy2.load(os.path.join(HERE, "..", "flume.thrift"), module_name="flume_thrift")
STATUS_NAMES = {v: k for k, v in flume.Status._NAMES_TO_VALUES.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--protocol", choices=["compact", "binary"], default="compact")
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--tag", default="pytls")
    a = p.parse_args()

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=a.cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    sock = TSSLSocket(a.host, a.port, socket_timeout=20000, ssl_context=context)
    transport = TFramedTransportFactory().get_transport(sock)
    proto = TCompactProtocolFactory() if a.protocol == "compact" else TBinaryProtocolFactory()
    transport.open()
    client = TClient(flume.ThriftSourceProtocol, proto.get_protocol(transport))
    print("tls", sock.sock.version())

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
    transport.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
