#!/usr/bin/env node
// A real almost-raft node over UDP, in Node.js.
//
//   node udp_node.js <id> <listen-host:port> <peer-id>@<host:port> [more peers...]
//
// e.g. in three terminals:
//   node udp_node.js a 127.0.0.1:7001 b@127.0.0.1:7002 c@127.0.0.1:7003
//   node udp_node.js b 127.0.0.1:7002 a@127.0.0.1:7001 c@127.0.0.1:7003
//   node udp_node.js c 127.0.0.1:7003 a@127.0.0.1:7001 b@127.0.0.1:7002
// Each prints a JSON line per leader change, e.g. {"term": 1, "leader": "b"}. Stop one with
// Ctrl-C: a leader hands leadership over, and the others print the new leader at once.
'use strict';
const dgram = require('node:dgram');
const { Node } = require('almost-raft');

function parseAddress(text) {
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad address ${JSON.stringify(text)}: expected <host:port>`);
  }
  return { host: text.slice(0, colon), port };
}

const [id, listen, ...peerArgs] = process.argv.slice(2);
if (!id || !listen) {
  console.error('usage: node udp_node.js <id> <listen-host:port> <peer-id>@<host:port>...');
  process.exit(2);
}
const peers = new Map(
  peerArgs.map((arg) => {
    const at = arg.indexOf('@');
    if (at <= 0) throw new Error(`bad peer ${JSON.stringify(arg)}: expected <id>@<host:port>`);
    return [arg.slice(0, at), parseAddress(arg.slice(at + 1))];
  }),
);

async function main() {
  const socket = dgram.createSocket('udp4');
  const { host, port } = parseAddress(listen);
  // Bind before the node starts: its first send must leave from the address peers know.
  await new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });

  const node = new Node({
    id,
    peers: [...peers.keys()],
    minNodes: peers.size + 1, // wait for the whole cluster before the first election
    electionTimeoutMs: 150, // a fast LAN: 150 ms / 50 ms
    heartbeatIntervalMs: 50,
    // Called on the JS thread: hand the datagram to the socket and return.
    send: (to, message) => {
      const peer = peers.get(to);
      if (peer) socket.send(message, peer.port, peer.host);
    },
    onLeaderChange: ({ leader, term }) => console.log(`{"term": ${term}, "leader": ${JSON.stringify(leader)}}`),
    onError: (err) => console.error('callback error:', err),
  });

  socket.on('message', (datagram) => {
    try {
      node.receive(datagram);
    } catch (err) {
      // Bad bytes, strangers and other clusters are refused; the node goes on.
      console.error(`dropped a datagram: ${err.code}: ${err.message}`);
    }
  });

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await node.close(); // a leader hands over first; no callback runs after this
    socket.close(); // nothing keeps the process alive now: it exits
  };
  socket.on('error', (err) => {
    console.error(`socket error: ${err.message}`);
    process.exitCode = 1;
    shutdown();
  });
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err) => {
  console.error(`${err.code ?? 'error'}: ${err.message}`);
  process.exit(1);
});
