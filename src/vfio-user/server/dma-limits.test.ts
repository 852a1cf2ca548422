/**
 * max_dma_maps from the host's limits (dma-limits.ts): each session's share of the fds left
 * after the server's own, capped at the kernel's 65535; windows from vm.max_map_count; and what
 * this process reads from /proc.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  deriveDmaLimits,
  KERNEL_DMA_ENTRY_LIMIT,
  MAX_WINDOWS_PER_SESSION,
  RESERVED_FDS,
  RESERVED_FDS_PER_SESSION,
  readHostLimits,
} from './dma-limits.ts';

describe('DMA limits', () => {
  it('splits the spare fds between the sessions, so that all of them together fit', () => {
    for (const openFiles of [1024, 4096, 20000, 524288, 1048576]) {
      for (const sessions of [1, 6, 18, 40]) {
        const l = deriveDmaLimits({ openFiles, maxMapCount: 65530 }, sessions);
        const used = RESERVED_FDS + sessions * (RESERVED_FDS_PER_SESSION + l.mapsPerSession);
        assert.ok(used <= openFiles || l.mapsPerSession === 0, `${openFiles}/${sessions}`);
        assert.ok(l.mapsPerSession <= KERNEL_DMA_ENTRY_LIMIT);
        assert.equal(l.fdsTotal, l.mapsPerSession * sessions);
      }
    }
    assert.equal(
      deriveDmaLimits({ openFiles: 20000, maxMapCount: 65530 }, 18).mapsPerSession,
      1032,
    );
    assert.equal(
      deriveDmaLimits({ openFiles: 20000, maxMapCount: 65530 }, 1).mapsPerSession,
      19680,
    );
    assert.equal(
      deriveDmaLimits({ openFiles: 1048576, maxMapCount: 65530 }, 18).mapsPerSession,
      58176,
    );
    assert.equal(
      deriveDmaLimits({ openFiles: 1048576, maxMapCount: 65530 }, 1).mapsPerSession,
      KERNEL_DMA_ENTRY_LIMIT,
    );
    assert.equal(deriveDmaLimits({ openFiles: 1024, maxMapCount: 65530 }, 18).mapsPerSession, 0);
  });

  it('keeps DMA windows to half of vm.max_map_count, at least one per session', () => {
    assert.equal(
      deriveDmaLimits({ openFiles: 4096, maxMapCount: 65530 }, 18).windowsPerSession,
      MAX_WINDOWS_PER_SESSION,
    );
    assert.equal(deriveDmaLimits({ openFiles: 4096, maxMapCount: 360 }, 18).windowsPerSession, 10);
    assert.equal(deriveDmaLimits({ openFiles: 4096, maxMapCount: 10 }, 18).windowsPerSession, 1);
  });

  it('reads RLIMIT_NOFILE and vm.max_map_count of this process', () => {
    const host = readHostLimits();
    const limits = readFileSync('/proc/self/limits', 'utf8');
    assert.match(limits, new RegExp(`^Max open files\\s+${host.openFiles}\\s`, 'm'));
    assert.equal(host.maxMapCount, Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8')));
  });
});
