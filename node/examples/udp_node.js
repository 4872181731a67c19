#!/usr/bin/env node
// A real almost-raft node over UDP, in Node.js.
//
//   node udp_node.js <id> <listen-host:port> <peer-id>@<host:port> [more peers...]
//
// e.g. in three terminals:
//   node udp_node.js a 127.0.0.1:7001 b@127.0.0.1:7002 c@127.0.0.1:7003
//   node udp_node.js b 127.0.0.1:7002 a@127.0.0.1:7001 c@127.0.0.1:7003
//   node udp_node.js c 127.0.0.1:7003 a@127.0.0.1:7001 b@127.0.0.1:7002
// With ALMOST_RAFT_KEY_FILE naming a key file (hex keys, one per line, readable by its owner
// only), every message is signed and unsigned or forged ones are refused.
// Each prints a JSON line per leader change, e.g. {"term": 1, "leader": "b"}. Stop one with
// Ctrl-C or SIGTERM: a leader hands leadership over, prints
// {"term": 1, "leader": "b", "handover": "c"}, and exits once it has seen the new leader (or
// after four election timeouts); the others print the new leader at once.
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

const ELECTION_TIMEOUT_MS = 150;
const leaderWaiters = new Set();

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
    ...(process.env.ALMOST_RAFT_KEY_FILE ? { keyFile: process.env.ALMOST_RAFT_KEY_FILE } : {}),
    electionTimeoutMs: ELECTION_TIMEOUT_MS, // a fast LAN: 150 ms / 50 ms
    heartbeatIntervalMs: 50,
    // Called on the JS thread: hand the datagram to the socket and return.
    send: (to, message) => {
      const peer = peers.get(to);
      if (peer) socket.send(message, peer.port, peer.host);
    },
    onLeaderChange: ({ leader, term }) => {
      console.log(`{"term": ${term}, "leader": ${JSON.stringify(leader)}}`);
      if (leader !== null) for (const waiter of leaderWaiters) waiter(term);
    },
    onError: (err) => console.error('callback error:', err),
  });

  // Bad bytes, strangers and other clusters are refused; the node goes on. The first of a
  // series is reported in full, then a count at most once a second.
  let refused = 0;
  let reporting = false;
  const report = () => {
    if (refused === 0) {
      reporting = false;
      return;
    }
    console.error(`dropped ${refused} more datagrams in the last second`);
    refused = 0;
    setTimeout(report, 1000).unref();
  };
  socket.on('message', (datagram) => {
    try {
      node.receive(datagram);
    } catch (err) {
      if (reporting) {
        refused++;
      } else {
        console.error(`dropped a datagram: ${err.code}: ${err.message}`);
        reporting = true;
        setTimeout(report, 1000).unref();
      }
    }
  });

  // A leader hands over, and waits (up to four election timeouts) to see the new leader.
  const handOver = async () => {
    let term;
    let to;
    try {
      if (!node.isLeader) return;
      term = node.term;
      to = node.transferLeadership();
    } catch {
      return; // not the leader any more, or no peer heard from
    }
    console.log(`{"term": ${term}, "leader": ${JSON.stringify(id)}, "handover": ${JSON.stringify(to)}}`);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 4 * ELECTION_TIMEOUT_MS);
      leaderWaiters.add((newTerm) => {
        if (newTerm > term) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  };

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await handOver();
    await node.close(); // no callback runs after this
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
