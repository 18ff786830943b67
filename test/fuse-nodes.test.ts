// The low-level binding's node table (src/fuse/lowlevel/nodes.ts), in-process: one node per
// union inode, paths rebuilt from names, lookup counts, and inode numbers never reaching a
// node of an object that is gone.
import test from 'ava';
import { NodeTable } from '../src/fuse/lowlevel/nodes.js';

const DIR = 0o040755;
const FILE = 0o100644;

function table(): { t: NodeTable; dropped: number[] } {
  const dropped: number[] = [];
  return { t: new NodeTable(1n, (id) => dropped.push(id)), dropped };
}

test('hard links are one node; each name is a path to it', (t) => {
  const { t: nodes } = table();
  const a = nodes.found(nodes.root, 'a', { ino: 10n, mode: FILE });
  const d = nodes.found(nodes.root, 'd', { ino: 11n, mode: DIR });
  const c = nodes.found(d, 'c', { ino: 10n, mode: FILE });
  t.is(a, c);
  t.is(nodes.path(a), '/a');
  nodes.unlinked(nodes.root, 'a', false);
  t.is(nodes.path(a), '/d/c');
  t.is(nodes.childPath(d, 'x'), '/d/x');
});

test('renaming a directory moves every path under it; a replaced target loses its name', (t) => {
  const { t: nodes } = table();
  const d = nodes.found(nodes.root, 'd', { ino: 20n, mode: DIR });
  const sub = nodes.found(d, 'sub', { ino: 21n, mode: DIR });
  const f = nodes.found(sub, 'f', { ino: 22n, mode: FILE });
  const e = nodes.found(nodes.root, 'e', { ino: 23n, mode: DIR });
  nodes.renamed({ parent: nodes.root, name: 'd' }, { parent: e, name: 'moved' }, false, false);
  t.is(nodes.path(f), '/e/moved/sub/f');
  const g = nodes.found(nodes.root, 'g', { ino: 24n, mode: FILE });
  nodes.renamed({ parent: sub, name: 'f' }, { parent: nodes.root, name: 'g' }, false, true);
  t.is(nodes.path(f), '/g');
  t.throws(() => nodes.path(g), { message: /no name/ });
  // The replaced file's number may come back for a new file: that is a new node.
  t.not(nodes.found(nodes.root, 'h', { ino: 24n, mode: FILE }).id, g.id);
});

test('the last name of an object gone: its number finds a new node; other names keep it', (t) => {
  const { t: nodes } = table();
  const a = nodes.found(nodes.root, 'a', { ino: 30n, mode: FILE });
  nodes.found(nodes.root, 'b', { ino: 30n, mode: FILE });
  nodes.unlinked(nodes.root, 'a', false); // b still names it
  t.is(nodes.found(nodes.root, 'c', { ino: 30n, mode: FILE }), a);
  nodes.unlinked(nodes.root, 'b', false);
  nodes.unlinked(nodes.root, 'c', true);
  t.not(nodes.found(nodes.root, 'new', { ino: 30n, mode: FILE }), a);
  // A number that comes back as another type is another object.
  t.true(nodes.found(nodes.root, 'dir', { ino: 30n, mode: DIR }).isDir);
});

test('lookup counts: a node goes when the kernel forgets it and no handle holds it', (t) => {
  const { t: nodes, dropped } = table();
  const f = nodes.found(nodes.root, 'f', { ino: 40n, mode: FILE });
  nodes.counted(f, 2);
  nodes.opened(f, 7);
  nodes.forget(f.id, 2);
  t.is(nodes.get(f.id), f); // still open
  nodes.closed(f, 7);
  t.throws(() => nodes.get(f.id), { message: /unknown node/ });
  t.deepEqual(dropped, [f.id]);
  const unused = nodes.found(nodes.root, 'u', { ino: 41n, mode: FILE });
  nodes.dropIfUnused(unused);
  t.deepEqual(dropped, [f.id, unused.id]);
  nodes.forget(1, 5); // the root is never forgotten
  t.is(nodes.get(1), nodes.root);
});
