'use strict';
// Death evidence (node.peerUnreachable): an application that learns from its own transport
// that the leader's process is gone tells the followers, and they elect another at once. The
// two followers have a ten-minute election timeout: only the evidence can elect them within
// the guard. Waits are on leader changes.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Node } = require('..');

test('evidence of a dead leader elects another without waiting for the timer', async () => {
  const nodes = new Map();
  const known = {};
  let wake = () => {};
  let dead = false;
  const start = (id, electionTimeoutMs) => {
    const node = new Node({
      id,
      peers: ['a', 'b', 'c'].filter((p) => p !== id),
      electionTimeoutMs,
      heartbeatIntervalMs: 50,
      send: (to, data) => {
        if (id === 'a' && dead) return; // its process is gone: nothing it sends arrives
        const peer = nodes.get(to);
        if (peer) { try { peer.receive(data); } catch {} }
      },
      onLeaderChange: (change) => { known[id] = change; wake(); },
    });
    nodes.set(id, node);
    return node;
  };
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
  const a = start('a', 150);
  start('b', 600000);
  start('c', 600000);
  try {
    const first = await agreed(['a', 'b', 'c'], 0);
    assert.equal(first.leader, 'a');
    dead = true;
    nodes.delete('a');
    nodes.get('b').peerUnreachable('a');
    nodes.get('c').peerUnreachable('a');
    const second = await agreed(['b', 'c'], first.term);
    assert.equal(second.term, first.term + 1);
    assert.throws(() => nodes.get('b').peerUnreachable('nobody'), { code: 'ERR_UNKNOWN_PEER' });
    assert.throws(() => nodes.get('b').peerUnreachable(3), { code: 'ERR_INVALID_ARG_TYPE' });
  } finally {
    await a.close();
    for (const node of nodes.values()) await node.close();
  }
  assert.throws(() => nodes.get('b').peerUnreachable('a'), { code: 'ERR_CLOSED' });
});
