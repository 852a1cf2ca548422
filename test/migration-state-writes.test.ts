/**
 * What a state directory is told while a stream loads (DeviceMigration → VfioPciDevice state
 * listeners; state-dir.ts writes the device's .state on each): RESUMING is recorded before any
 * data, and RESUMING → STOP is ONE change that carries both the migrated config space and the
 * end of the load. Two changes (the migrated state still marked RESUMING, then the mark
 * cleared) let a kill -9 between their writes restart as "migration stream cut in RESUMING"
 * after a whole load.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DeviceMigration, MigState } from '../src/migration/index.ts';
import type { DeviceStateBytes } from '../src/vfio/index.ts';
import { fixture } from './support/nvlink2/fixture.ts';

const GPU = '0004:03:00.0';
const CONFIG_REGION = 7;
/** PCI_INTERRUPT_LINE: writable, and nothing derives from it. */
const INTERRUPT_LINE = 0x3c;

describe('migration: the state changes a load makes', () => {
  const source = fixture();
  const destination = fixture();
  after(() => {
    source.done();
    destination.done();
  });

  it('RESUMING → STOP is one change, holding the migrated config and no load under way', () => {
    const a = source.open(GPU);
    const b = destination.open(GPU);
    a.write(CONFIG_REGION, INTERRUPT_LINE, Uint8Array.of(0x5a));
    assert.notEqual(b.read(CONFIG_REGION, INTERRUPT_LINE, 1)[0], 0x5a);
    const saving = new DeviceMigration(a);
    saving.setState(MigState.STOP_COPY);
    const stream: Uint8Array[] = [];
    for (let parts = saving.read(1 << 20); parts.length > 0; parts = saving.read(1 << 20))
      for (const p of parts) stream.push(p.slice());

    const seen: DeviceStateBytes[] = [];
    b.onStateChange(() => seen.push(b.snapshotState()));
    const loading = new DeviceMigration(b);
    loading.setState(MigState.RESUMING);
    assert.deepEqual(
      seen.map((s) => s.migrationLoad),
      ['RESUMING'],
      'RESUMING is recorded before any data',
    );
    for (const chunk of stream) loading.write(chunk);
    seen.length = 0;
    loading.setState(MigState.STOP);
    assert.deepEqual(
      seen.map((s) => [s.config[INTERRUPT_LINE], s.migrationLoad]),
      [[0x5a, undefined]],
    );
    assert.equal(b.read(CONFIG_REGION, INTERRUPT_LINE, 1)[0], 0x5a);
  });
});
