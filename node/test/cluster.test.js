'use strict';
// A 3-node in-process cluster: election, failover, transfer, durable term, leader changes.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FAST, cluster, waitFor, agreedLeader, closeAll, Node } = require('./helpers');

test('three nodes elect one leader, agreed by all', async () => {
  const net = cluster(['a', 'b', 'c']);
  try {
    const { leader, term } = await agreedLeader(net.nodes.values());
    assert.ok(term >= 1);
    const roles = [...net.nodes.values()].map((n) => n.status().role).sort();
    assert.deepEqual(roles, ['follower', 'follower', 'leader']);
    for (const node of net.nodes.values()) {
      assert.equal(node.leader, leader);
      assert.equal(node.term, term);
      assert.equal(node.isLeader, node.id === leader);
      assert.equal(typeof node.term, 'number');
      const s = node.status();
      assert.deepEqual(s.peers.sort(), ['a', 'b', 'c'].filter((p) => p !== node.id));
      assert.equal(s.waitingForNodes, 0);
      assert.equal(s.stopped, false);
      assert.equal(s.votedFor === null || typeof s.votedFor === 'string', true);
    }
  } finally {
    await closeAll(net);
  }
});

test('closing the leader leads to a new leader with a higher term', async () => {
  const net = cluster(['a', 'b', 'c']);
  try {
    const first = await agreedLeader(net.nodes.values());
    await net.nodes.get(first.leader).close();
    const rest = [...net.nodes.values()].filter((n) => n.id !== first.leader);
    const second = await agreedLeader(rest, 'a new leader');
    assert.notEqual(second.leader, first.leader);
    assert.ok(second.term > first.term, `term ${second.term} > ${first.term}`);
  } finally {
    await closeAll(net);
  }
});

test('transferLeadership hands leadership to the chosen peer, or to the best one', async () => {
  const net = cluster(['a', 'b', 'c']);
  try {
    const first = await agreedLeader(net.nodes.values());
    const target = ['a', 'b', 'c'].find((id) => id !== first.leader);
    assert.equal(net.nodes.get(first.leader).transferLeadership(target), target);
    const second = await waitFor(() => {
      const s = net.nodes.get(target).status();
      return s.role === 'leader' ? s : null;
    }, 'the target to lead');
    assert.ok(second.term > first.term);
    const agreed = await agreedLeader(net.nodes.values(), 'all to know the target leads', target);

    const chosen = net.nodes.get(target).transferLeadership();
    assert.ok(['a', 'b', 'c'].includes(chosen) && chosen !== target);
    const third = await agreedLeader(net.nodes.values(), 'the chosen peer to lead', chosen);
    assert.ok(third.term > agreed.term);
  } finally {
    await closeAll(net);
  }
});

test('statePath keeps the term across a restart', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'almost-raft-state-'));
  const statePath = path.join(dir, 'a.state');
  const start = () => new Node({ id: 'solo', minNodes: 1, ...FAST, statePath, send: () => {} });
  try {
    const node = start();
    const before = await waitFor(() => node.isLeader && node.term, 'the single node to lead');
    await node.close();
    assert.ok(fs.existsSync(statePath));

    const again = start();
    try {
      assert.ok(again.term >= before, `restarted at term ${again.term}, had ${before}`);
      const after = await waitFor(() => again.isLeader && again.term, 'the restarted node to lead');
      assert.ok(after > before, `new term ${after} > ${before}`);
    } finally {
      await again.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('leaderChanges() yields every change in order, current state first, and ends at close', async () => {
  const seen = [];
  const net = cluster(['a', 'b', 'c'], (id) =>
    id === 'a' ? { onLeaderChange: (change) => seen.push(change) } : {},
  );
  const a = net.nodes.get('a');
  const fromStart = a.leaderChanges();
  assert.equal(typeof fromStart[Symbol.asyncIterator], 'function');
  assert.equal(fromStart[Symbol.asyncIterator](), fromStart);
  const collected = (async () => {
    const out = [];
    for await (const change of fromStart) out.push(change);
    return out;
  })();
  try {
    // Three leaders in a row: elections and two transfers.
    let agreed = await agreedLeader(net.nodes.values());
    for (let i = 0; i < 2; i++) {
      const target = ['a', 'b', 'c'].find((id) => id !== agreed.leader);
      net.nodes.get(agreed.leader).transferLeadership(target);
      agreed = await waitFor(() => {
        const s = a.status();
        return s.leader === target ? s : null;
      }, `a to see ${target} lead`);
    }
    await waitFor(() => seen.at(-1)?.leader === agreed.leader, 'the last change delivered');

    // A later iterator starts with the current state; return() (or break) ends it.
    const later = a.leaderChanges();
    assert.deepEqual(await later.next(), { value: seen.at(-1), done: false });
    assert.deepEqual(await later.return(), { value: undefined, done: true });
    assert.deepEqual(await later.next(), { value: undefined, done: true });
    let loops = 0;
    for await (const change of a.leaderChanges()) {
      assert.deepEqual(change, seen.at(-1));
      loops++;
      break;
    }
    assert.equal(loops, 1);
  } finally {
    setTimeout(() => closeAll(net), 50);
  }
  const all = await collected; // ends when a is closed
  assert.deepEqual(all, seen, 'the iterator and onLeaderChange saw the same changes');
  assert.deepEqual(all[0], { leader: null, term: 0 }, 'the state at start comes first');
  for (let i = 1; i < all.length; i++) {
    assert.ok(all[i].term >= all[i - 1].term, 'terms never go down');
  }
  assert.ok(all.filter((c) => c.leader !== null).length >= 3, JSON.stringify(all));
  assert.deepEqual(await fromStart.next(), { value: undefined, done: true });
});
