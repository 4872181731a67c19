'use strict';
// The examples run: three UDP nodes in three processes elect a leader and fail over when it
// stops; the TypeScript example compiles and runs.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { waitFor, freePorts } = require('./helpers');

const root = path.join(__dirname, '..');

function start(id, ports, ids) {
  const me = ids.indexOf(id);
  const args = [
    path.join(root, 'examples', 'udp_node.js'),
    id,
    `127.0.0.1:${ports[me]}`,
    ...ids.filter((p) => p !== id).map((p) => `${p}@127.0.0.1:${ports[ids.indexOf(p)]}`),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = { id, child, changes: [], stderr: '', exit: null };
  let buffered = '';
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      proc.changes.push(JSON.parse(buffered.slice(0, nl)));
      buffered = buffered.slice(nl + 1);
    }
  });
  child.stderr.on('data', (chunk) => (proc.stderr += chunk));
  proc.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((proc.exit = { code, signal }))));
  return proc;
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`udp_node.js: on ${signal} a leader hands over and the others agree on the new leader`, async () => {
    const ids = ['a', 'b', 'c'];
    const ports = await freePorts(3);
    const procs = ids.map((id) => start(id, ports, ids));
    const changesOf = (p) => p.changes.filter((c) => !('handover' in c));
    try {
      const agreed = (group, pred) =>
        waitFor(() => {
          const last = group.map((p) => changesOf(p).at(-1));
          if (last.some((c) => !c || c.leader === null || !pred(c))) return null;
          return last.every((c) => c.leader === last[0].leader && c.term === last[0].term) ? last[0] : null;
        }, `processes ${group.map((p) => p.id)} to agree on a leader`, 15000);
      const first = await agreed(procs, () => true);
      const leader = procs.find((p) => p.id === first.leader);
      leader.child.kill(signal);
      assert.deepEqual(await leader.exited, { code: 0, signal: null }, leader.stderr);
      const handover = leader.changes.find((c) => 'handover' in c);
      assert.ok(handover, `no handover printed: ${JSON.stringify(leader.changes)}`);
      assert.deepEqual({ term: handover.term, leader: handover.leader }, first);
      const rest = procs.filter((p) => p !== leader);
      const second = await agreed(rest, (c) => c.term > first.term);
      assert.equal(second.leader, handover.handover, 'the peer handed to leads');
      // The old leader saw its successor before it exited: a handover, not a timeout.
      assert.deepEqual(changesOf(leader).at(-1), second);
      for (const p of rest) p.child.kill('SIGINT');
      for (const p of rest) assert.deepEqual(await p.exited, { code: 0, signal: null }, p.stderr);
    } finally {
      for (const p of procs) if (p.exit === null) p.child.kill('SIGKILL');
    }
  });
}

test('udp_node.js: a flood of garbage prints a few lines and a count', async () => {
  const ids = ['a', 'b', 'c'];
  const ports = await freePorts(3);
  const proc = start('a', ports, ids);
  try {
    await waitFor(() => proc.changes.length > 0, 'the node to start');
    const sender = dgram.createSocket('udp4');
    for (let i = 0; i < 10000; i++) {
      await new Promise((resolve) => sender.send(Buffer.from(`garbage ${i}`), ports[0], '127.0.0.1', resolve));
    }
    sender.close();
    await waitFor(() => /dropped \d+ more datagrams/.test(proc.stderr), 'a line counting the refused datagrams');
    proc.child.kill('SIGTERM');
    assert.deepEqual(await proc.exited, { code: 0, signal: null }, proc.stderr);
    const lines = proc.stderr.trim().split('\n');
    assert.match(lines[0], /^dropped a datagram: ERR_MALFORMED_MESSAGE/);
    const counted = lines.slice(1).map((l) => Number(l.match(/^dropped (\d+) more datagrams/)[1]));
    assert.ok(counted.every((n) => n > 0) && 1 + counted.reduce((x, y) => x + y, 0) <= 10000);
    // One line in full, then at most one a second while the flood lasts.
    assert.ok(lines.length <= 10, proc.stderr);
  } finally {
    if (proc.exit === null) proc.child.kill('SIGKILL');
  }
});

test('in_process.ts type-checks under strict options, compiles and runs', () => {
  const outDir = path.join(root, '.tsbuild');
  fs.rmSync(outDir, { recursive: true, force: true });
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'examples'), '--noEmit', 'false', '--outDir', outDir]);
  const out = execFileSync(process.execPath, [path.join(outDir, 'in_process.js')], { encoding: 'utf8', timeout: 30000 });
  assert.match(out, /^a sees leader [abc] in term \d+$/m);
  assert.match(out, /^now [abc] leads in term \d+ \(a is (follower|leader)\)$/m);
  assert.match(out, /^refused: malformed message/m);
  assert.match(out, /^all closed$/m);
  fs.rmSync(outDir, { recursive: true, force: true });
});
