'use strict';
// Bad input of every kind throws, with the documented error codes; the node goes on.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FAST, waitFor, Node, cluster, agreedLeader, closeAll } = require('./helpers');
const almostRaft = require('..');

const send = () => {};
const base = { id: 'a', send };
const vectors = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'wire-vectors.json'), 'utf8'),
);
const hex = (name) => Buffer.from(vectors.valid.find((v) => v.name === name).hex, 'hex');

const typeError = (what) => ({
  name: 'TypeError',
  code: 'ERR_INVALID_ARG_TYPE',
  message: new RegExp(what.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
});
const failure = (code, message) => ({ name: 'Error', code, ...(message ? { message } : {}) });

test('wrong argument types throw TypeError with code ERR_INVALID_ARG_TYPE', () => {
  assert.throws(() => Node(base), { name: 'TypeError', code: 'ERR_CONSTRUCT_CALL_REQUIRED', message: /without 'new'/ });
  assert.throws(() => new Node(), typeError('"options" argument must be an object. Received undefined'));
  assert.throws(() => new Node(null), typeError('Received null'));
  assert.throws(() => new Node('a'), typeError('Received type string ("a")'));
  assert.throws(() => new Node([]), typeError('an object'));
  assert.throws(() => new Node({ send }), typeError('options.id must be of type string. Received undefined'));
  assert.throws(() => new Node({ id: 5, send }), typeError('options.id must be of type string. Received type number (5)'));
  assert.throws(() => new Node({ id: 'a' }), typeError('options.send must be of type function'));
  assert.throws(() => new Node({ id: 'a', send: 'x' }), typeError('options.send'));
  assert.throws(() => new Node({ ...base, peers: 'b' }), typeError('options.peers must be an array of strings'));
  assert.throws(() => new Node({ ...base, peers: ['b', 7] }), typeError('options.peers[1] must be of type string'));
  assert.throws(() => new Node({ ...base, onLeaderChange: 1 }), typeError('options.onLeaderChange'));
  assert.throws(() => new Node({ ...base, onError: {} }), typeError('options.onError must be of type function. Received an instance of Object'));
  assert.throws(() => new Node({ ...base, electionTimeoutMs: '150' }), typeError('options.electionTimeoutMs must be of type number'));
  assert.throws(() => new Node({ ...base, minNodes: 3n }), typeError('options.minNodes'));
  assert.throws(() => new Node({ ...base, maxNodes: '5' }), typeError('options.maxNodes'));
  assert.throws(() => new Node({ ...base, preVote: 1 }), typeError('options.preVote must be of type boolean'));
  assert.throws(() => new Node({ ...base, checkQuorum: 'yes' }), typeError('options.checkQuorum'));
  assert.throws(() => new Node({ ...base, statePath: 1 }), typeError('options.statePath'));
  assert.throws(() => new Node({ ...base, cluster: null }), typeError('options.cluster'));
  assert.throws(() => almostRaft.setWorkerThreads('2'), typeError('"threads" argument'));

  const node = new Node({ ...base, peers: ['b'] });
  try {
    assert.throws(() => node.receive('01'), typeError('"data" argument must be a Buffer or Uint8Array. Received type string'));
    assert.throws(() => node.receive(), typeError('Received undefined'));
    assert.throws(() => node.receive(new Uint16Array(4)), typeError('Received an instance of Uint16Array'));
    assert.throws(() => node.receive([1, 5]), typeError('Received an instance of Array'));
    assert.throws(() => node.addPeer(5), typeError('"id" argument must be of type string'));
    assert.throws(() => node.addPeer(), typeError('"id" argument'));
    assert.throws(() => node.removePeer(null), typeError('"id" argument'));
    assert.throws(() => node.transferLeadership(1), typeError('"to" argument'));
    assert.equal(node.status().peers.length, 1, 'the node goes on');
  } finally {
    return node.close();
  }
});

test('bad ids throw ERR_INVALID_ID', async () => {
  assert.throws(() => new Node({ ...base, id: '' }), failure('ERR_INVALID_ID', /must not be empty/));
  assert.throws(() => new Node({ ...base, id: 'x'.repeat(256) }), failure('ERR_INVALID_ID', /256 bytes long/));
  assert.throws(() => new Node({ ...base, id: 'é'.repeat(128) }), failure('ERR_INVALID_ID'));
  assert.doesNotThrow(() => new Node({ ...base, id: 'x'.repeat(almostRaft.MAX_ID_LEN) }).close());
  assert.throws(() => new Node({ ...base, peers: [''] }), failure('ERR_INVALID_ID'));
  assert.throws(() => new Node({ ...base, peers: ['a'] }), failure('ERR_INVALID_ID', /own peer/));
  const node = new Node(base);
  try {
    assert.throws(() => node.addPeer(''), failure('ERR_INVALID_ID'));
    assert.throws(() => node.addPeer('a'), failure('ERR_INVALID_ID'));
    assert.throws(() => node.addPeer('y'.repeat(300)), failure('ERR_INVALID_ID'));
  } finally {
    await node.close();
  }
});

test('bad config throws ERR_INVALID_CONFIG naming the option', () => {
  const bad = (options, message) =>
    assert.throws(() => new Node({ ...base, ...options }), failure('ERR_INVALID_CONFIG', message));
  bad({ electionTimeoutMs: 0 }, /electionTimeoutMs: must be greater than zero/);
  bad({ electionTimeoutMs: -1 }, /electionTimeoutMs: must be a whole number/);
  bad({ electionTimeoutMs: 1.5 }, /electionTimeoutMs/);
  bad({ electionTimeoutMs: NaN }, /electionTimeoutMs/);
  bad({ electionTimeoutMs: 2 ** 40 }, /electionTimeoutMs/);
  bad({ heartbeatIntervalMs: 600 }, /^invalid config: heartbeatIntervalMs: 600 ms is more than half the election timeout \(1000 ms\)/);
  bad({ heartbeatIntervalMs: 0 }, /heartbeatIntervalMs/);
  bad({ messageTimeoutMs: 0 }, /messageTimeoutMs/);
  bad({ minNodes: 0 }, /minNodes: must be at least 1/);
  bad({ maxNodes: 2 }, /maxNodes: 2 is less than minNodes \(3\)/);
  bad({ cluster: 'c'.repeat(256) }, /cluster/);
  bad({ statePath: '' }, /statePath: must not be empty/);
  bad({ electionTimeout: 150 }, /electionTimeout: unknown option/);
  assert.throws(() => almostRaft.setWorkerThreads(0), failure('ERR_INVALID_CONFIG', /workerThreads/));
  // null and undefined mean "the default" where the option has no value.
  new Node({ ...base, maxNodes: null, statePath: null, onLeaderChange: undefined, onError: null }).close();
});

test('an unreadable state file throws ERR_STORAGE', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'almost-raft-bad-state-'));
  try {
    const statePath = path.join(dir, 'state');
    fs.writeFileSync(statePath, 'this is not a state file');
    assert.throws(() => new Node({ ...base, statePath }), failure('ERR_STORAGE'));
    assert.throws(() => new Node({ ...base, statePath: dir }), failure('ERR_STORAGE'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the invalid wire vectors are refused with ERR_MALFORMED_MESSAGE; the node goes on', async () => {
  const node = new Node({ ...base, id: 'b', peers: ['a'] });
  try {
    assert.ok(vectors.invalid.length >= 10);
    for (const v of vectors.invalid) {
      assert.throws(() => node.receive(Buffer.from(v.hex, 'hex')), failure('ERR_MALFORMED_MESSAGE', /malformed message/), v.name);
      assert.throws(() => node.receive(new Uint8Array(Buffer.from(v.hex, 'hex'))), failure('ERR_MALFORMED_MESSAGE'), v.name);
    }
    assert.deepEqual(node.status().peers, ['a']);
    node.receive(hex('pre-vote')); // a valid message still goes in
  } finally {
    await node.close();
  }
});

test('every valid wire vector goes in at its recipient, as Buffer, Uint8Array or a view', async () => {
  for (const v of vectors.valid) {
    const bytes = Buffer.from(v.hex, 'hex');
    const node = new Node({ id: v.to, peers: [v.from], cluster: v.cluster, send, electionTimeoutMs: 60000, heartbeatIntervalMs: 1000 });
    try {
      node.receive(bytes);
      node.receive(new Uint8Array(bytes));
      const padded = Buffer.concat([Buffer.from([0xff, 0xff, 0xff]), bytes, Buffer.from([0xee])]);
      node.receive(padded.subarray(3, 3 + bytes.length));
    } finally {
      await node.close();
    }
  }
});

test('messages of another cluster, for another node or from a stranger are refused', async () => {
  const node = new Node({ ...base, id: 'b', peers: ['a'] });
  try {
    // "pre-vote" is from a to b in cluster "".
    node.receive(hex('pre-vote'));
    assert.throws(() => node.receive(hex('timeout-now')), failure('ERR_WRONG_RECIPIENT'));
    assert.throws(() => node.receive(hex('vote-reply-granted')), failure('ERR_WRONG_RECIPIENT'));
  } finally {
    await node.close();
  }
  const prod = new Node({ ...base, id: 'n1', peers: ['n3'], cluster: 'other' });
  try {
    assert.throws(() => prod.receive(hex('pre-vote-reply-granted')), failure('ERR_WRONG_CLUSTER', /cluster "prod"/));
  } finally {
    await prod.close();
  }
  const stranger = new Node({ ...base, id: 'n1', peers: ['n3'], cluster: 'prod' });
  try {
    assert.throws(() => stranger.receive(hex('pre-vote-reply-granted')), failure('ERR_UNKNOWN_PEER', /"n2"/));
  } finally {
    await stranger.close();
  }
});

test('peer and leadership errors: ERR_TOO_MANY_NODES, ERR_NOT_LEADER, ERR_NO_PEERS, ERR_UNKNOWN_PEER', async () => {
  const small = new Node({ ...base, peers: ['b', 'c'], maxNodes: 3 });
  try {
    assert.throws(() => small.addPeer('d'), failure('ERR_TOO_MANY_NODES', /maxNodes = 3/));
    small.addPeer('b'); // known: no effect
    assert.throws(() => small.transferLeadership(), failure('ERR_NOT_LEADER'));
    assert.throws(() => small.transferLeadership('b'), failure('ERR_NOT_LEADER'));
    small.removePeer('zz'); // unknown: no effect
    small.removePeer('c');
    assert.deepEqual(small.status().peers, ['b']);
  } finally {
    await small.close();
  }
  const solo = new Node({ ...base, minNodes: 1, ...FAST });
  try {
    await waitFor(() => solo.isLeader, 'a single node to lead');
    assert.throws(() => solo.transferLeadership(), failure('ERR_NO_PEERS'));
    assert.throws(() => solo.transferLeadership('nobody'), failure('ERR_UNKNOWN_PEER'));
  } finally {
    await solo.close();
  }
});

test('every call after close() throws ERR_CLOSED; close() again is fine', async () => {
  const node = new Node({ ...base, peers: ['b', 'c'] });
  assert.equal(node.closed, false);
  const closing = node.close();
  assert.equal(node.closed, true);
  const closed = failure('ERR_CLOSED', /shut down/);
  assert.throws(() => node.receive(hex('pre-vote')), closed);
  assert.throws(() => node.addPeer('d'), closed);
  assert.throws(() => node.removePeer('b'), closed);
  assert.throws(() => node.transferLeadership(), closed);
  assert.throws(() => node.status(), closed);
  assert.throws(() => node.isLeader, closed);
  assert.throws(() => node.leader, closed);
  assert.throws(() => node.term, closed);
  assert.throws(() => node.leaderChanges(), closed);
  // Argument types are still checked first.
  assert.throws(() => node.addPeer(1), typeError('"id" argument'));
  assert.equal(await closing, undefined);
  await node.close();
  await Promise.all([node.close(), node.close()]);
  assert.equal(node.id, 'a');
  assert.throws(() => almostRaft.setWorkerThreads(4), failure('ERR_RUNTIME', /already started/));
});

test('removing its own id stops a node: ERR_CLOSED, status().stopped, close() still fine', async () => {
  const node = new Node({ ...base, peers: ['b'] });
  node.removePeer('a');
  await waitFor(() => node.closed, 'the node to stop');
  assert.equal(node.status().stopped, true);
  assert.throws(() => node.addPeer('c'), failure('ERR_CLOSED'));
  assert.throws(() => node.receive(hex('pre-vote')), failure('ERR_CLOSED'));
  await node.close();
  assert.throws(() => node.status(), failure('ERR_CLOSED'));
});

test('with keys, nodes sign everything and refuse unsigned messages with ERR_UNAUTHENTICATED', async () => {
  const key = Buffer.from('almost-raft test key, not secret');
  const net = cluster(['a', 'b', 'c'], () => ({ keys: [key] }));
  try {
    const { leader, term } = await agreedLeader(net.nodes.values());
    const follower = [...net.nodes.values()].find((n) => n.id !== leader);
    const unsigned = Buffer.concat([Buffer.from([3, 5, 0]), Buffer.alloc(8), Buffer.from([0, 1, 0x62, 1]), Buffer.from(follower.id), Buffer.alloc(8)]);
    unsigned.writeBigUInt64BE(BigInt(term + 5), 3);
    unsigned[13] = leader.charCodeAt(0);
    assert.throws(() => follower.receive(unsigned), { code: 'ERR_UNAUTHENTICATED', message: /not signed/ });
    assert.equal(follower.status().unauthenticated, 1);
    assert.equal((await agreedLeader(net.nodes.values())).term, term);
    // Rotation, one node at a time: the new key second, then first, then alone.
    const next = Buffer.from('another key of thirty-two bytes!');
    for (const keys of [[key, next], [next, key], [next]]) {
      for (const node of net.nodes.values()) node.setKeys(keys);
    }
    assert.throws(() => follower.setKeys([Buffer.from('short')]), failure('ERR_INVALID_CONFIG', /keys: key 0 is 5 bytes/));
  } finally {
    await closeAll(net);
  }
});

test('bad keys throw ERR_INVALID_CONFIG or a TypeError naming the option', () => {
  assert.throws(() => new Node({ ...base, keys: [Buffer.from('short')] }), failure('ERR_INVALID_CONFIG', /keys: key 0 is 5 bytes/));
  assert.throws(() => new Node({ ...base, keys: ['a string'] }), { name: 'TypeError', message: /options\.keys\[0\]/ });
  assert.throws(() => new Node({ ...base, keyFile: '/nonexistent/key' }), failure('ERR_INVALID_CONFIG', /keyFile: .*nonexistent/));
});
