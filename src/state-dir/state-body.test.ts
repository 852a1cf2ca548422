/**
 * The bodies of machine.state and the device states are checked member by member where they
 * are read (state-dir.ts): a body of the right kind and checksum but of another shape (another
 * build's, a hand edit) is one STATE_DIR line naming the file and the member when the directory
 * is opened, not a TypeError at restore.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { platformDigest, StateDir } from './state-dir.ts';
import { encodeStateFile, StateDirError } from './state-file.ts';

const root = mkdtempSync(join(tmpdir(), 'state-body-'));
after(() => rmSync(root, { recursive: true, force: true }));

const DTB = new Uint8Array([0xd0, 0x0d, 0xfe, 0xed]);
const GOOD = {
  platform: platformDigest(DTB),
  memories: {},
  lpids: [1],
  firmware: [],
  partitions: [{ pid: 77, lpid: 1, devices: ['0004:04:00.0'] }],
};

function opened(name: string, body: unknown): string {
  const dir = join(root, name);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, 'machine.state'), encodeStateFile('machine', body));
  try {
    StateDir.open(dir, DTB).close();
  } catch (err) {
    assert.ok(err instanceof StateDirError, String(err));
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail(`opened with ${JSON.stringify(body)}`);
}

describe('machine.state body', () => {
  it('a member missing or of another type is named with the file', () => {
    const cases: [string, unknown, string][] = [
      [
        'a',
        { ...GOOD, partitions: [{ pid: 77 }] },
        '"partitions[0].devices" must be an array, got undefined',
      ],
      ['b', { ...GOOD, lpids: ['1'] }, '"lpids[0]" must be a non-negative integer, got "1"'],
      ['c', { ...GOOD, firmware: [{ phbId: 7 }] }, '"firmware[0].phbId" must be a string, got 7'],
      ['d', { ...GOOD, platform: undefined }, '"platform" must be a string, got undefined'],
      [
        'e',
        { ...GOOD, given: { version: 1, uids: { m: ['1'] }, unknown: [], othersUnknown: false } },
        '"given.uids.m[0]" must be a non-negative integer, got "1"',
      ],
      [
        'f',
        { ...GOOD, given: { version: 1, uids: {}, unknown: [], othersUnknown: 'no' } },
        '"given.othersUnknown" must be a boolean, got "no"',
      ],
    ];
    for (const [name, body, why] of cases)
      assert.equal(opened(name, body), `${join(root, name, 'machine.state')}: ${why}`);
  });
});

describe('device state body', () => {
  function deviceOpened(name: string, body: unknown): string {
    const dir = join(root, name);
    mkdirSync(join(dir, 'devices'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'machine.state'), encodeStateFile('machine', GOOD));
    writeFileSync(join(dir, 'devices', '0004:04:00.0.state'), encodeStateFile('device', body));
    try {
      StateDir.open(dir, DTB).close();
    } catch (err) {
      assert.ok(err instanceof StateDirError, String(err));
      return err.message;
    }
    return 'opened';
  }
  it('migrationLoad (a load under way) is RESUMING or ERROR, or absent; anything else is named', () => {
    const base = { config: '', registers: [] };
    const path = (name: string) => join(root, name, 'devices', '0004:04:00.0.state');
    assert.equal(deviceOpened('g', base), 'opened');
    assert.equal(deviceOpened('h', { ...base, migrationLoad: 'RESUMING' }), 'opened');
    assert.equal(deviceOpened('i', { ...base, migrationLoad: 'ERROR' }), 'opened');
    assert.equal(
      deviceOpened('j', { ...base, migrationLoad: 'STOP' }),
      `${path('j')}: "migrationLoad" must be RESUMING or ERROR, got "STOP"`,
    );
    assert.equal(
      deviceOpened('k', { ...base, migrationLoad: 1 }),
      `${path('k')}: "migrationLoad" must be a string, got 1`,
    );
  });
});
