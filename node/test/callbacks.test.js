'use strict';
// Callbacks: throwing ones do not stop the cluster, close() works inside them, a node outlives
// its unreachable JS object, and the process exits once every node is closed.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { cluster, waitFor, agreedLeader, closeAll, sleep, Node } = require('./helpers');

function runFixture(name, args = [], nodeArgs = []) {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...nodeArgs, path.join(__dirname, 'fixtures', name), ...args],
      { timeout: 30000 },
      (error, stdout, stderr) => resolve({ error, code: child.exitCode, signal: child.signalCode, stdout, stderr }),
    );
  });
}

async function transferOnce(net) {
  const before = await agreedLeader(net.nodes.values());
  const target = [...net.nodes.keys()].find((id) => id !== before.leader);
  net.nodes.get(before.leader).transferLeadership(target);
  const after = await agreedLeader(net.nodes.values(), `${target} to lead`, target);
  return { before, after };
}

test('a throwing send callback is handed to onError and the cluster goes on', async () => {
  const errors = [];
  let calls = 0;
  const net = cluster(['a', 'b', 'c'], (id) =>
    id === 'a'
      ? {
          send: (to, message) => {
            net.deliver('a', to, message);
            if (++calls % 2 === 0) throw new Error('boom');
          },
          onError: (err) => errors.push(err),
        }
      : {},
  );
  try {
    const { before, after } = await transferOnce(net);
    assert.ok(after.term > before.term);
    await waitFor(() => errors.length > 0, 'an error report');
    assert.ok(errors[0] instanceof Error);
    assert.equal(errors[0].message, 'boom');
  } finally {
    await closeAll(net);
  }
});

test('without onError, a throw becomes a process warning and the cluster goes on', async () => {
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  const net = cluster(['a', 'b', 'c'], (id) => ({
    onLeaderChange: () => {
      if (id === 'a') throw new Error('oops');
      if (id === 'b') throw 'a plain string'; // eslint-disable-line no-throw-literal
    },
    ...(id === 'c'
      ? {
          onLeaderChange: () => {
            throw new Error('first');
          },
          onError: () => {
            throw new Error('second');
          },
        }
      : {}),
  }));
  try {
    await transferOnce(net);
    await waitFor(() => warnings.length >= 6, 'warnings');
    const ours = warnings.filter((w) => w.name === 'AlmostRaftWarning');
    assert.equal(ours.length, warnings.length);
    for (const w of ours) {
      assert.equal(w.code, 'ERR_CALLBACK_THREW');
      assert.match(w.message, /the onLeaderChange callback of almost-raft node "[abc]" threw/);
    }
    const causes = ours.map((w) => (w.cause instanceof Error ? w.cause.message : w.cause));
    assert.ok(causes.includes('oops'));
    assert.ok(causes.includes('a plain string'));
    assert.ok(causes.includes('second'), 'a throwing onError is reported too');
    assert.ok(!causes.includes('first'), 'what onError got is not reported again');
  } finally {
    await closeAll(net);
    process.off('warning', onWarning);
  }
});

test('close() inside a callback works, and no callback runs once it resolved', async () => {
  const closing = new Map();
  const late = [];
  const resolved = new Set();
  const watch = (id, what) => {
    if (resolved.has(id)) late.push(`${what} of ${id}`);
  };
  let sends = 0;
  let leaderClosed = false;
  const net = cluster(['a', 'b', 'c', 'd', 'e'], (id) => ({
    send: (to, message) => {
      watch(id, 'send');
      net.deliver(id, to, message);
      // e closes itself from inside its send callback.
      if (id === 'e' && ++sends === 5 && !closing.has(id)) closing.set(id, net.nodes.get(id).close());
    },
    onLeaderChange: (change) => {
      watch(id, 'onLeaderChange');
      // The first leader other than e closes itself from inside its own leader callback.
      if (change.leader === id && id !== 'e' && !leaderClosed) {
        leaderClosed = true;
        closing.set(id, net.nodes.get(id).close());
      }
    },
  }));
  try {
    await waitFor(() => closing.size === 2, 'two nodes closing from their callbacks');
    for (const [id, promise] of closing) {
      await promise;
      resolved.add(id);
      assert.equal(net.nodes.get(id).closed, true);
      assert.throws(() => net.nodes.get(id).status(), { code: 'ERR_CLOSED' });
    }
    const rest = [...net.nodes.values()].filter((n) => !closing.has(n.id));
    const { leader } = await agreedLeader(rest, 'the three others to agree');
    assert.ok(!closing.has(leader));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(late, []);
  } finally {
    await closeAll(net);
  }
});

test('the process exits by itself once every node is closed', async () => {
  for (const args of [[], ['in-callback']]) {
    const started = Date.now();
    const r = await runFixture('exit-after-close.js', args);
    assert.equal(r.error, null, `${args}: ${r.error} ${r.stderr}`);
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.stdout), { closed: true });
    assert.ok(Date.now() - started < 15000);
  }
});

test('unref() lets the process exit while a node runs; ref() undoes it', async () => {
  const r = await runFixture('unref.js');
  assert.equal(r.error, null, `${r.error} ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { states: [true, false, true, false], closed: false });
});

test('a node keeps running after its JS object is garbage-collected', async () => {
  const r = await runFixture('unreachable.js', [], ['--expose-gc']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.collected, true, 'the Node object was collected');
  assert.ok(result.after > result.atCollection, JSON.stringify(result));
});

test('setWorkerThreads works before the first node and throws ERR_RUNTIME after', async () => {
  const r = await runFixture('worker-threads.js');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { code: 'ERR_RUNTIME' });
});

test('the node never waits for a blocked event loop: its events queue up meanwhile', async () => {
  const sends = [];
  const node = new Node({
    id: 'lonely',
    peers: ['x', 'y'],
    electionTimeoutMs: 50,
    heartbeatIntervalMs: 20,
    send: (to) => sends.push({ to, at: Date.now() }),
  });
  try {
    await waitFor(() => sends.length > 0, 'a first campaign');
    const blockedAt = Date.now();
    while (Date.now() - blockedAt < 1000); // block the JS thread for a second
    const unblockedAt = Date.now();
    await sleep(30);
    // A pre-candidate asks again every [50, 100) ms: ten rounds or more, two sends each,
    // were made while JS was blocked, and all arrive at once now.
    const burst = sends.filter((s) => s.at >= unblockedAt && s.at < unblockedAt + 30);
    assert.ok(burst.length >= 10, `only ${burst.length} sends queued during the block`);
  } finally {
    await node.close();
  }
});
