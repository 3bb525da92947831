/*
 * Flume 1.11's Thrift RPC interface, flume-ng-sdk/src/main/thrift/flume.thrift
 * (Apache Flume, Apache License 2.0), unchanged in its definitions. The interop tests load
 * it at run time with thriftpy2 to build an independent client and server.
 */

namespace java org.apache.flume.thrift

struct ThriftFlumeEvent {
  1: required map <string, string> headers,
  2: required binary body,
}

enum Status {
  OK,
  FAILED,
  ERROR,
  UNKNOWN
}

service ThriftSourceProtocol {
  Status append(1: ThriftFlumeEvent event),
  Status appendBatch(1: list<ThriftFlumeEvent> events),
}
