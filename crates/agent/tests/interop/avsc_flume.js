// An independent Avro IPC peer for the avro interop tests: avsc (Avro for JavaScript), whose
// stateful channels use the Netty framing and the Avro handshake for Java compatibility.
//
//   node avsc_flume.js client PORT BATCH   appendBatch of BATCH events, then one append, to a
//                                          Sluice avro source; prints one JSON line with both
//                                          answers.
//   node avsc_flume.js server EXPECTED     serves AvroSourceProtocol on 127.0.0.1 (port printed
//                                          as "PORT n"), prints each event received as one JSON
//                                          line, answers OK, exits after EXPECTED events.
//
// The protocol is written here from flume.avdl, without its doc comment, so its MD5 differs
// from Flume's: both directions go through the handshake's NONE / resend-with-text path.
'use strict';

const avro = require('avsc');
const net = require('net');

const protocol = {
  protocol: 'AvroSourceProtocol',
  namespace: 'org.apache.flume.source.avro',
  types: [
    {type: 'enum', name: 'Status', symbols: ['OK', 'FAILED', 'UNKNOWN']},
    {
      type: 'record',
      name: 'AvroFlumeEvent',
      fields: [
        {name: 'headers', type: {type: 'map', values: 'string'}},
        {name: 'body', type: 'bytes'},
      ],
    },
  ],
  messages: {
    append: {request: [{name: 'event', type: 'AvroFlumeEvent'}], response: 'Status'},
    appendBatch: {
      request: [{name: 'events', type: {type: 'array', items: 'AvroFlumeEvent'}}],
      response: 'Status',
    },
  },
};

const service = avro.Service.forProtocol(protocol);

function fail(err) {
  process.stderr.write(`avsc peer: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}

function client(port, batch) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', fail);
  const c = service.createClient({buffering: true, transport: socket});
  c.on('error', fail);
  const events = [];
  for (let i = 0; i < batch; i++) {
    events.push({headers: {n: String(i), src: 'avsc'}, body: Buffer.from(`avsc-${i}`)});
  }
  c.appendBatch(events, (err, batchStatus) => {
    if (err) fail(err);
    c.append({headers: {}, body: Buffer.from('avsc-single')}, (err2, oneStatus) => {
      if (err2) fail(err2);
      process.stdout.write(JSON.stringify({appendBatch: batchStatus, append: oneStatus}) + '\n');
      socket.end();
      c.destroyChannels();
    });
  });
}

function server(expected) {
  let seen = 0;
  const s = service.createServer();
  const record = (e) => {
    process.stdout.write(JSON.stringify({headers: e.headers, body: e.body.toString()}) + '\n');
    seen += 1;
  };
  const maybeExit = () => {
    if (seen >= expected) setTimeout(() => process.exit(0), 300);
  };
  s.onAppendBatch((events, cb) => {
    events.forEach(record);
    cb(null, 'OK');
    maybeExit();
  });
  s.onAppend((event, cb) => {
    record(event);
    cb(null, 'OK');
    maybeExit();
  });
  // A handshake with an unknown protocol hash is reported here (the client then resends with
  // its protocol text): not fatal.
  s.on('error', (err) => process.stderr.write(`avsc server: ${err.message}\n`));
  const listener = net.createServer((socket) => {
    socket.on('error', () => {});
    s.createChannel(socket);
  });
  listener.listen(0, '127.0.0.1', () => {
    process.stdout.write(`PORT ${listener.address().port}\n`);
  });
  setTimeout(() => fail(`timed out after ${seen} of ${expected} events`), 60000).unref();
}

const [mode, a, b] = process.argv.slice(2);
if (mode === 'client') client(Number(a), Number(b));
else if (mode === 'server') server(Number(a));
else fail('usage: avsc_flume.js client PORT BATCH | server EXPECTED');
