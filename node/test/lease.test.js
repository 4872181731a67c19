'use strict';
// The leader lease from Node.js: onLeaseChange says when this node holds the lease and when
// it lost it, also when no message arrives (the leader is cut off: net.down); status()
// says how much is left; invalid lease settings are refused.
const test = require('node:test');
const assert = require('node:assert');
const { cluster, agreedLeader, closeAll, waitFor, Node } = require('./helpers');

test('the leader hears it holds the lease, and that it lost it when cut off', async () => {
  const events = [];
  const net = cluster(['a', 'b', 'c'], (id) => ({
    onLeaseChange: (lease) => events.push({ id, ...lease }),
  }));
  try {
    const { leader, term } = await agreedLeader(net.nodes.values());
    await waitFor(() => events.find((e) => e.id === leader && e.held), 'the lease');
    assert.deepStrictEqual(events.filter((e) => e.held), [{ id: leader, held: true, term }]);
    const node = net.nodes.get(leader);
    assert.ok(node.status().leaseRemainingMs > 0);
    for (const [id, other] of net.nodes) {
      if (id !== leader) assert.strictEqual(other.status().leaseRemainingMs, null);
    }
    net.down.add(leader); // no message reaches it or leaves it
    await waitFor(() => events.find((e) => e.id === leader && !e.held), 'the loss');
    assert.deepStrictEqual(events.at(-1), { id: leader, held: false, term });
    assert.strictEqual(node.status().leaseRemainingMs, null);
  } finally {
    await closeAll(net);
  }
});

test('lease settings are checked', () => {
  const send = () => {};
  assert.throws(() => new Node({ id: 'a', send, peers: ['b'], driftBoundPpm: 600000 }), {
    code: 'ERR_INVALID_CONFIG',
    message: /driftBoundPpm/,
  });
  assert.throws(() => new Node({ id: 'a', send, peers: ['b'], leaseMarginMs: 2000 }), {
    code: 'ERR_INVALID_CONFIG',
    message: /leaseMarginMs/,
  });
  assert.throws(() => new Node({ id: 'a', send, peers: ['b'], onLeaseChange: 5 }), {
    name: 'TypeError',
  });
});

test('whileLeader runs fn with the term and aborts its signal when the lease is lost', async () => {
  const net = cluster(['a', 'b', 'c']);
  try {
    const { leader, term } = await agreedLeader(net.nodes.values());
    const node = net.nodes.get(leader);
    let started;
    const running = new Promise((resolve) => { started = resolve; });
    const result = node.whileLeader(async (t, signal) => {
      assert.strictEqual(t, term);
      assert.ok(signal instanceof AbortSignal);
      started();
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
      return 'stopped';
    });
    await running;
    net.down.add(leader); // no message reaches it: only the lease's end can stop fn
    assert.strictEqual(await result, 'stopped');
    assert.strictEqual(node.status().leaseRemainingMs, null);
  } finally {
    await closeAll(net);
  }
});

test('whileLeader rejects with ERR_CLOSED when the node closes before it leads', async () => {
  const node = new Node({ id: 'a', send: () => {}, peers: ['b', 'c'] });
  const waiting = node.whileLeader(() => 'never');
  await node.close();
  await assert.rejects(waiting, { code: 'ERR_CLOSED' });
  assert.throws(() => node.whileLeader(() => {}), { code: 'ERR_CLOSED' });
});

test('whileLeader wants a function', async () => {
  const node = new Node({ id: 'a', send: () => {}, peers: ['b', 'c'] });
  try {
    assert.throws(() => node.whileLeader('not a function'), { name: 'TypeError' });
  } finally {
    await node.close();
  }
});
