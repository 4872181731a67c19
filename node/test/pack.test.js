'use strict';
// The npm packages as published (scripts/pack.sh: the main package and this platform's)
// install into an empty project and work there, from CommonJS, from an ES module and from
// TypeScript.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const quiet = ['--no-audit', '--no-fund', '--loglevel=error'];

const consumerCjs = `
const { Node } = require('almost-raft');
const ids = ['a', 'b', 'c'];
const nodes = new Map();
for (const id of ids) {
  nodes.set(id, new Node({
    id, peers: ids.filter((p) => p !== id), electionTimeoutMs: 150, heartbeatIntervalMs: 50,
    send: (to, message) => { const n = nodes.get(to); if (n && !n.closed) n.receive(message); },
  }));
}
const timer = setInterval(async () => {
  const leaders = ids.map((id) => nodes.get(id).leader);
  if (leaders[0] && leaders.every((l) => l === leaders[0])) {
    clearInterval(timer);
    await Promise.all([...nodes.values()].map((n) => n.close()));
    console.log('leader ' + leaders[0]);
  }
}, 20);
`;

const consumerEsm = `
import { Node, MAX_ID_LEN } from 'almost-raft';
const node = new Node({ id: 'solo', minNodes: 1, electionTimeoutMs: 150, heartbeatIntervalMs: 50, send() {} });
for await (const change of node.leaderChanges()) {
  if (change.leader === 'solo') break;
}
await node.close();
console.log('esm ok ' + MAX_ID_LEN);
`;

const consumerTs = `
import { Node, type Status } from 'almost-raft';
const node: Node = new Node({ id: 'x', send: (to: string, message: Buffer) => void [to, message] });
const status: Status = node.status();
const role: 'follower' | 'pre_candidate' | 'candidate' | 'leader' = status.role;
void role;
void node.close();
`;

test('the npm packages (main and this platform\'s) install into an empty project and work there', { timeout: 180000 }, (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'almost-raft-pack-'));
  try {
    const version = require('../package.json').version;
    execFileSync(path.join(root, 'scripts', 'pack.sh'), [work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const tarball = (name) => path.join(work, `${name}-${version}.tgz`);
    const list = (file) => execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n').sort();
    // The main package holds no addon: it names one package per platform.
    assert.deepEqual(list(tarball('almost-raft')), ['package/README.md', 'package/index.d.ts', 'package/index.js', 'package/package.json']);
    const main = JSON.parse(execFileSync('tar', ['-xzOf', tarball('almost-raft'), 'package/package.json'], { encoding: 'utf8' }));
    assert.equal(main.optionalDependencies['almost-raft-linux-x64-gnu'], version);
    const platform = 'almost-raft-linux-x64-gnu';
    assert.deepEqual(list(tarball(platform)), ['package/README.md', 'package/almost-raft.linux-x64-gnu.node', 'package/package.json']);
    for (const name of ['almost-raft', platform]) {
      t.diagnostic(`${path.basename(tarball(name))}: ${fs.statSync(tarball(name)).size} bytes`);
    }

    const project = path.join(work, 'consumer');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    execFileSync(npm, ['install', '--offline', ...quiet, tarball('almost-raft'), tarball(platform)], { cwd: project, encoding: 'utf8' });
    const installed = path.join(project, 'node_modules', 'almost-raft');
    assert.ok(fs.existsSync(path.join(installed, 'index.d.ts')));

    fs.writeFileSync(path.join(project, 'cjs.js'), consumerCjs);
    fs.writeFileSync(path.join(project, 'esm.mjs'), consumerEsm);
    fs.writeFileSync(path.join(project, 'ts.mts'), consumerTs);
    const run = (file) => execFileSync(process.execPath, [file], { cwd: project, encoding: 'utf8', timeout: 30000 });
    assert.match(run('cjs.js'), /^leader [abc]$/m);
    assert.equal(run('esm.mjs').trim(), 'esm ok 255');

    // The installed types, seen from a TypeScript project (the package's own tsc and types).
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    fs.symlinkSync(path.join(root, 'node_modules', '@types'), path.join(project, 'node_modules', '@types'));
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2022', '--types', 'node', 'ts.mts'], { cwd: project, encoding: 'utf8' });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
