"""An independent ThriftSourceProtocol server (thriftpy2, Flume's IDL loaded at run time) for
a thrift sink to deliver to, with framed transport and the given protocol.

Every appendBatch call is numbered from 1. Calls whose number is in --fail are answered
FAILED and recorded nowhere else; every other call's events are appended to OUT as JSON lines
{"headers": {...}, "body": "..."} (flushed) and then answered OK. Prints "listening" once
bound. Exits 0 once EXPECT events were answered OK, or 2 after --timeout seconds."""

import argparse
import json
import os
import sys
import threading
import time

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.rpc import make_server
from thriftpy2.transport import TFramedTransportFactory

HERE = os.path.dirname(os.path.abspath(__file__))
flume = thriftpy2.load(os.path.join(HERE, "flume.thrift"), module_name="flume_thrift")


class Handler:
    def __init__(self, out, fail, expect):
        self.out = out
        self.fail = fail
        self.expect = expect
        self.calls = 0
        self.accepted = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def _record(self, events):
        for e in events:
            self.out.write(
                json.dumps({"headers": dict(e.headers), "body": e.body.decode("utf-8", "replace")})
                + "\n"
            )
        self.out.flush()
        self.accepted += len(events)
        if self.accepted >= self.expect:
            self.done.set()

    def appendBatch(self, events):
        with self.lock:
            self.calls += 1
            if self.calls in self.fail:
                sys.stderr.write("answering FAILED to call %d\n" % self.calls)
                return flume.Status.FAILED
            self._record(events)
            return flume.Status.OK

    def append(self, event):
        with self.lock:
            self._record([event])
            return flume.Status.OK


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--protocol", choices=["compact", "binary"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--fail", default="", help="comma-separated appendBatch call numbers")
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    fail = {int(x) for x in a.fail.split(",") if x}
    proto = TCompactProtocolFactory() if a.protocol == "compact" else TBinaryProtocolFactory()
    with open(a.out, "a") as out:
        handler = Handler(out, fail, a.expect)
        server = make_server(
            flume.ThriftSourceProtocol,
            handler,
            "127.0.0.1",
            a.port,
            proto_factory=proto,
            trans_factory=TFramedTransportFactory(),
        )
        t = threading.Thread(target=server.serve, daemon=True)
        t.start()
        print("listening", flush=True)
        finished = handler.done.wait(a.timeout)
        # Let the last OK reach the sink before the process goes away.
        time.sleep(0.2)
        out.flush()
    os._exit(0 if finished else 2)


if __name__ == "__main__":
    main()
