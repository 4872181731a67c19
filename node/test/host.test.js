'use strict';
// Hosts of many groups from Node.js: election, handover, bad input, close.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Host } = require('..');

const IDS = ['h1', 'h2', 'h3'];
const GUARD_MS = 60000; // bounds a hang; nothing here waits on a clock

/** Three hosts whose datagrams go straight to each other's receive; leader events noted. */
function world(groups) {
  const w = { hosts: new Map(), leaders: new Map(), waiters: [] };
  const changed = () => {
    for (const check of w.waiters.slice()) check();
  };
  for (const id of IDS) {
    w.leaders.set(id, new Map());
    const host = new Host({
      id,
      cluster: 'js-hosts',
      electionTimeoutMs: 300,
      heartbeatIntervalMs: 30,
      send(to, data) {
        const target = w.hosts.get(to);
        if (!target) return;
        try {
          target.receive(data);
        } catch (err) {
          if (err.code !== 'ERR_CLOSED') throw err;
        }
      },
      onEvent(e) {
        if (e.kind === 'leader') {
          w.leaders.get(id).set(e.group, { leader: e.leader, term: e.term });
          changed();
        }
      },
    });
    w.hosts.set(id, host);
  }
  for (const host of w.hosts.values()) {
    for (const g of groups) host.addGroup(g, IDS);
  }
  /** Resolves when every group has one leader known by all, passing `check`. */
  w.agreed = (check = () => true) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('not agreed within the guard')), GUARD_MS);
      const test = () => {
        const out = new Map();
        for (const g of groups) {
          const views = IDS.map((h) => w.leaders.get(h).get(g));
          const first = views[0];
          if (!first || !first.leader) return;
          if (!views.every((v) => v && v.leader === first.leader && v.term === first.term)) return;
          if (!check(g, first)) return;
          out.set(g, first);
        }
        clearTimeout(timer);
        w.waiters = w.waiters.filter((c) => c !== test);
        resolve(out);
      };
      w.waiters.push(test);
      test();
    });
  w.close = () => Promise.all([...w.hosts.values()].map((h) => h.close()));
  return w;
}

test('three hosts elect every group, and a handover moves one in the next term', async () => {
  const groups = Array.from({ length: 30 }, (_, i) => `g${i}`);
  const w = world(groups);
  try {
    const leaders = await w.agreed();
    for (const [g, { leader, term }] of leaders) {
      const s = w.hosts.get('h2').status(g);
      assert.equal(s.leader, leader);
      assert.ok(s.term >= term);
    }
    const total = IDS.reduce((n, h) => n + w.hosts.get(h).stats().leading, 0);
    assert.equal(total, 30);
    const { leader, term } = leaders.get('g0');
    const target = leader === 'h3' ? 'h1' : 'h3';
    assert.equal(w.hosts.get(leader).transferLeadership('g0', target), target);
    await w.agreed((g, v) => g !== 'g0' || (v.leader === target && v.term === term + 1));
  } finally {
    await w.close();
  }
});

test('bad input throws with a code and changes nothing; calls after close throw ERR_CLOSED', async () => {
  const host = new Host({ id: 'h1', send() {}, cluster: 'js-bad' });
  assert.throws(() => host.addGroup('g', ['h2', 'h3']), { code: 'ERR_UNKNOWN_PEER' });
  assert.throws(() => host.addGroup('g', 'h1'), { name: 'TypeError' });
  assert.throws(() => host.addGroup(3, IDS), { name: 'TypeError' });
  host.addGroup('g', IDS);
  assert.throws(() => host.addGroup('g', IDS), { code: 'ERR_GROUP_EXISTS' });
  assert.throws(() => host.status('nope'), { code: 'ERR_UNKNOWN_GROUP' });
  assert.throws(() => host.receive(Buffer.from('\x05junk')), { code: 'ERR_MALFORMED_MESSAGE' });
  assert.throws(() => host.receive('text'), { name: 'TypeError' });
  assert.throws(() => host.transferLeadership('g'), { code: 'ERR_NOT_LEADER' });
  assert.equal(host.stats().groups, 1);
  await host.close();
  assert.throws(() => host.addGroup('late', IDS), { code: 'ERR_CLOSED' });
  assert.throws(() => new Host({ id: 'x' }), { name: 'TypeError' });
  assert.throws(() => new Host(), { name: 'TypeError' });
});
