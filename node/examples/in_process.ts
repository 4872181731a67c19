// Three almost-raft nodes in one process, joined by an in-memory "network", in TypeScript.
// Type-checked by `npm run typecheck` (tsc --noEmit -p examples); to run it:
//   npx tsc -p examples --noEmit false --outDir .tsbuild && node .tsbuild/in_process.js
import { Node, type LeaderChange, type NodeOptions, type Status } from 'almost-raft';

const ids = ['a', 'b', 'c'] as const;
type Id = (typeof ids)[number];
const nodes = new Map<string, Node>();

// The application's network: here a direct call. A real one sends the bytes to the peer's
// process, whose application calls node.receive(bytes) (see udp_node.js).
function deliver(to: string, message: Buffer): void {
  const target = nodes.get(to);
  if (target === undefined || target.closed) return;
  try {
    target.receive(message);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_CLOSED') throw err;
  }
}

function options(id: Id): NodeOptions {
  return {
    id,
    peers: ids.filter((peer) => peer !== id),
    electionTimeoutMs: 150,
    heartbeatIntervalMs: 50,
    send: deliver,
    onError: (error: unknown) => console.error(`${id}: a callback threw`, error),
  };
}

async function firstLeader(node: Node): Promise<LeaderChange> {
  for await (const change of node.leaderChanges()) {
    if (change.leader !== null) return change; // leaving the loop ends the iterator
  }
  throw new Error(`${node.id} closed before it knew a leader`);
}

async function main(): Promise<void> {
  for (const id of ids) nodes.set(id, new Node(options(id)));
  const a = nodes.get('a')!;

  const { leader, term } = await firstLeader(a);
  console.log(`a sees leader ${leader} in term ${term}`);

  // Hand leadership to another node; the term, a fencing token, goes up.
  const current = nodes.get(leader!)!;
  const next: string = current.transferLeadership();
  while (a.leader !== next) await new Promise((resolve) => setTimeout(resolve, 10));
  const status: Status = a.status();
  console.log(`now ${status.leader} leads in term ${status.term} (a is ${status.role})`);

  // Errors carry a stable code.
  try {
    a.receive(Buffer.from('not a message'));
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ERR_MALFORMED_MESSAGE') {
      console.log(`refused: ${err.message}`);
    } else {
      throw err;
    }
  }

  await Promise.all([...nodes.values()].map((node) => node.close()));
  console.log('all closed');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
