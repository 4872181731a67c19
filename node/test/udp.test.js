'use strict';
// The built-in UDP transport: three nodes with a key, no send and no receive, elect; the
// leader keeps its leadership while the event loop is blocked for 10 election timeouts; when
// it closes, the two others agree on a higher term. Waits are on leader changes.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Node } = require('..');
const { freePorts } = require('./helpers');

const KEY = Buffer.from('almost-raft test key, not secret');
const T = 150;

test('three nodes on the built-in transport elect, survive a blocked event loop, replace a closed leader', async () => {
  const ids = ['a', 'b', 'c'];
  const free = await freePorts(3);
  const ports = Object.fromEntries(ids.map((id, i) => [id, free[i]]));
  const known = {};
  let wake = () => {};
  const nodes = new Map(ids.map((id) => [id, new Node({
    id,
    listen: `127.0.0.1:${ports[id]}`,
    peers: Object.fromEntries(ids.filter((p) => p !== id).map((p) => [p, `localhost:${ports[p]}`])),
    keys: [KEY],
    electionTimeoutMs: T,
    heartbeatIntervalMs: 50,
    onLeaderChange: (change) => { known[id] = change; wake(); },
  })]));
  const agreed = (among, after) => new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error(`no agreed leader: ${JSON.stringify(known)}`)), 30000);
    const check = () => {
      const first = known[among[0]];
      if (first && first.leader !== null && first.term > after
          && among.every((i) => known[i] && known[i].leader === first.leader && known[i].term === first.term)) {
        clearTimeout(guard);
        resolve(first);
      }
    };
    wake = check;
    check();
  });
  try {
    const first = await agreed(ids, 0);
    const end = Date.now() + 10 * T; // block the event loop: the election runs elsewhere
    while (Date.now() < end);
    for (const [id, node] of nodes) {
      const s = node.status();
      assert.deepEqual([s.leader, s.term, s.unauthenticated], [first.leader, first.term, 0], id);
    }
    await nodes.get(first.leader).close(); // hands over
    nodes.delete(first.leader);
    const second = await agreed([...nodes.keys()], first.term);
    assert.notEqual(second.leader, first.leader);
  } finally {
    await Promise.all([...nodes.values()].map((n) => n.close()));
  }
});

test('the built-in transport needs a listen address, peer addresses, and no send', () => {
  assert.throws(() => new Node({ id: 'a', listen: '127.0.0.1:0', send: () => {}, peers: { b: 'localhost:9' } }),
    { code: 'ERR_INVALID_CONFIG', message: /give send or listen, not both/ });
  assert.throws(() => new Node({ id: 'a', listen: '127.0.0.1:0', peers: ['b'] }),
    { name: 'TypeError', message: /options\.peers must be an object mapping/ });
  assert.throws(() => new Node({ id: 'a', listen: 'not an address', peers: { b: 'localhost:9' } }),
    { code: 'ERR_INVALID_CONFIG', message: /listen: cannot listen on "not an address"/ });
});
