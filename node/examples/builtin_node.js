#!/usr/bin/env node
// A node on the library's own UDP transport: no socket code in the application.
//
//   node builtin_node.js <id> <listen-host:port> <peer-id>@<host:port> [more peers...]
//
// e.g. node builtin_node.js a 127.0.0.1:7001 b@127.0.0.1:7002 c@127.0.0.1:7003, and the same
// for b and c. With ALMOST_RAFT_KEY_FILE naming a key file (hex keys, one per line, readable
// by its owner only) every message is signed, and unsigned or forged ones are refused.
// Prints a JSON line per leader change. Ctrl-C or SIGTERM closes the node; a leader hands
// over first.
'use strict';
const { Node } = require('almost-raft');

const [id, listen, ...peerArgs] = process.argv.slice(2);
if (!id || !listen) {
  console.error('usage: node builtin_node.js <id> <listen-host:port> <peer-id>@<host:port>...');
  process.exit(2);
}
const peers = Object.fromEntries(peerArgs.map((arg) => [arg.slice(0, arg.indexOf('@')), arg.slice(arg.indexOf('@') + 1)]));
const keyFile = process.env.ALMOST_RAFT_KEY_FILE;
const node = new Node({
  id,
  listen,
  peers,
  minNodes: peerArgs.length + 1,
  electionTimeoutMs: 150,
  heartbeatIntervalMs: 50,
  ...(keyFile ? { keyFile } : {}),
  onLeaderChange: ({ leader, term }) => console.log(JSON.stringify({ term, leader })),
});
const stop = () => node.close(); // the process exits once the node is closed
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
