'use strict';
// Shared helpers of the tests: an in-process network and polling.
const dgram = require('node:dgram');
const { Node } = require('..');

/** Fast timeouts so that elections take a few hundred milliseconds. */
const FAST = { electionTimeoutMs: 150, heartbeatIntervalMs: 50, messageTimeoutMs: 50 };

/**
 * Starts one node per id, all connected by an in-process network that delivers each message
 * synchronously from the sender's `send` callback. `net.down` holds ids whose messages are
 * dropped (in both directions). `options(id)` adds per-node options.
 */
function cluster(ids, options = () => ({})) {
  const net = { nodes: new Map(), down: new Set(), delivered: 0 };
  net.deliver = (from, to, message) => {
    if (net.down.has(from) || net.down.has(to)) return;
    const target = net.nodes.get(to);
    if (!target || target.closed) return;
    try {
      target.receive(message);
      net.delivered++;
    } catch (err) {
      if (err.code !== 'ERR_CLOSED') throw err;
    }
  };
  for (const id of ids) {
    const node = new Node({
      id,
      peers: ids.filter((p) => p !== id),
      ...FAST,
      send: (to, message) => net.deliver(id, to, message),
      ...options(id),
    });
    net.nodes.set(id, node);
  }
  return net;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` until it returns a truthy value, which it returns; fails after `ms`. */
async function waitFor(predicate, what, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Waits until every open node of `nodes` knows the same leader (`want`, if given); returns
 * { leader, term }.
 */
async function agreedLeader(nodes, what = 'one leader agreed by all', want = null) {
  const all = [...nodes];
  return waitFor(() => {
    const open = all.filter((n) => !n.closed);
    const statuses = open.map((n) => n.status());
    const leader = statuses[0]?.leader;
    if (!leader || (want !== null && leader !== want)) return null;
    if (!statuses.every((s) => s.leader === leader && s.term === statuses[0].term)) return null;
    const leaders = statuses.filter((s) => s.role === 'leader');
    if (leaders.length !== 1 || leaders[0].id !== leader) return null;
    return { leader, term: statuses[0].term };
  }, what);
}

/** Free UDP ports on 127.0.0.1 (bound to port 0, then released for the nodes). */
async function freePorts(n) {
  const sockets = await Promise.all(
    Array.from({ length: n }, () => new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

async function closeAll(net) {
  await Promise.all([...net.nodes.values()].map((n) => n.close()));
}

module.exports = { FAST, cluster, sleep, waitFor, agreedLeader, closeAll, freePorts, Node };
