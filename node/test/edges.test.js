'use strict';
// The edges of the JS side: a blocked event loop (bounded queue), a callback that throws on
// every call (rate-limited warnings), and nodes in worker threads that end.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { waitFor, Node } = require('./helpers');

const MAX_QUEUED_SENDS = 1024;
const MAX_QUEUED_CHANGES = 64;

/** A heartbeat (round 1) of the leader `from` to `to` in `term` (docs/wire.md, version 3). */
function heartbeat(term, from, to = 'a') {
  const t = Buffer.alloc(8);
  t.writeBigUInt64BE(BigInt(term));
  const id = (s) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
  const round = Buffer.alloc(8);
  round.writeBigUInt64BE(1n);
  return Buffer.concat([Buffer.from([3, 5, 0]), t, Buffer.from([0]), id(from), id(to), round]);
}

/** Collects process warnings of almost-raft while `body` runs. */
async function withWarnings(body) {
  const warnings = [];
  const onWarning = (w) => w.name === 'AlmostRaftWarning' && warnings.push(w);
  process.on('warning', onWarning);
  try {
    return await body(warnings);
  } finally {
    process.off('warning', onWarning);
  }
}

test('a blocked event loop: at most 1024 sends and 64 changes wait, the final state arrives', async () => {
  await withWarnings(async (warnings) => {
    const sends = [];
    const changes = [];
    const node = new Node({
      id: 'a',
      peers: ['b', 'c'],
      send: (to) => sends.push(to),
      onLeaderChange: (change) => changes.push(change),
    });
    try {
      // The JS thread stays busy (no callback can run) while the node replies to heartbeats
      // and changes leader once per term; batches smaller than the core's per-peer send
      // queue, each published before the next, so every reply reaches the callback queue.
      // (The core's own send queues may drop some replies under this flood: send 4 x the bound.)
      const last = 1 + 4 * MAX_QUEUED_SENDS;
      for (let first = 1; first <= last; first += 16) {
        for (let term = first; term < first + 16 && term <= last; term++) {
          node.receive(heartbeat(term, term % 2 ? 'b' : 'c'));
        }
        const target = Math.min(first + 15, last);
        while (node.status().term < target); // busy: the event loop is blocked
      }
      const final = { leader: last % 2 ? 'b' : 'c', term: last };
      assert.deepEqual(sends, [], 'no callback ran while JS was busy');
      await waitFor(() => changes.at(-1)?.term === final.term, 'the final state');
      assert.deepEqual(changes.at(-1), final);
      const terms = changes.map((c) => c.term);
      assert.deepEqual(terms, [...terms].sort((x, y) => x - y), 'terms in order');
      assert.ok(changes.length <= MAX_QUEUED_CHANGES + 1, `${changes.length} changes delivered`);
      assert.ok(sends.length <= MAX_QUEUED_SENDS + 1, `${sends.length} sends delivered`);
      const dropped = await waitFor(() => warnings.find((w) => w.code === 'ERR_EVENTS_DROPPED'), 'a warning');
      const [, s, c] = dropped.message.match(/dropped (\d+) stale sends .* skipped (\d+) leader changes/);
      assert.ok(Number(s) > 0 && Number(c) > 0, `${dropped.message} (${sends.length} sends)`);
    } finally {
      await node.close();
    }
  });
});

test('a send callback throwing every time: three warnings in full, then a count', async () => {
  await withWarnings(async (warnings) => {
    // A pre-candidate that no one answers asks its two peers again every 20-40 ms.
    const node = new Node({
      id: 'a',
      peers: ['b', 'c'],
      electionTimeoutMs: 20,
      heartbeatIntervalMs: 10,
      send: () => {
        throw new Error('the network is gone');
      },
    });
    try {
      const summary = await waitFor(() => warnings.find((w) => /threw \d+ more times/.test(w.message)), 'a count');
      const before = warnings.slice(0, warnings.indexOf(summary));
      assert.equal(before.length, 3, before.map((w) => w.message).join('\n'));
      for (const w of before) assert.equal(w.cause.message, 'the network is gone');
      assert.equal(summary.code, 'ERR_CALLBACK_THREW');
      assert.ok(Number(summary.message.match(/threw (\d+) more/)[1]) > 0);
    } finally {
      await node.close();
    }
  });
});

test('a node started in a worker thread is closed when the worker ends', async () => {
  const fixture = path.join(__dirname, 'fixtures', 'worker-env-cleanup.js');
  const stdout = await new Promise((resolve, reject) =>
    execFile(process.execPath, [fixture], { timeout: 30000 }, (err, out, errOut) => (err ? reject(new Error(`${err}: ${errOut}`)) : resolve(out))),
  );
  const results = stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(results, [
    { how: 'terminate', restarted: true },
    { how: 'exit', restarted: true },
  ]);
});

// Defect: a node whose save failed stopped silently (leaderChanges() just ended, nothing reached
// onError). Now the last change names no leader, the iterator rejects with ERR_STORAGE, onError
// gets the same error, `failure` holds it, status says stopped, and later calls throw ERR_CLOSED.
test('a node whose save fails tells onError, ends its iterator with the error, then is closed', async () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'almost-raft-'));
  const errors = [];
  const node = new Node({
    id: 'a',
    peers: ['b'],
    minNodes: 2,
    electionTimeoutMs: 60000,
    statePath: path.join(dir, 'a.state'),
    send: () => {},
    onError: (e) => errors.push(e),
  });
  try {
    fs.rmSync(dir, { recursive: true }); // the next save (of a higher term) cannot be written
    const seen = [];
    await assert.rejects(
      (async () => {
        for await (const change of node.leaderChanges()) {
          seen.push(change);
          if (seen.length === 1) node.receive(heartbeat(5, 'b'));
        }
      })(),
      (e) => e.code === 'ERR_STORAGE' && /a\.state/.test(e.message),
    );
    assert.equal(seen.at(-1).leader, null, 'the last change names no leader');
    assert.equal(errors.length, 1);
    assert.equal(node.failure, errors[0]);
    assert.equal(errors[0].code, 'ERR_STORAGE');
    const status = node.status();
    assert.ok(status.stopped && status.leader === null && !node.isLeader);
    assert.throws(() => node.receive(heartbeat(6, 'b')), { code: 'ERR_CLOSED' });
    const late = node.leaderChanges(); // the final state, then the error
    assert.equal((await late.next()).value.leader, null);
    await assert.rejects(late.next(), { code: 'ERR_STORAGE' });
  } finally {
    await node.close();
  }
});
