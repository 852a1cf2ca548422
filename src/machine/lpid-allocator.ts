/**
 * The LPID (logical partition id) allocator of KVM on POWER, as Linux v5.12 has it:
 * arch/powerpc/kvm/powerpc.c kvmppc_init_lpid / kvmppc_claim_lpid / kvmppc_alloc_lpid /
 * kvmppc_free_lpid over a bitmap, set up by book3s_64_mmu_hv.c kvmppc_mmu_hv_init():
 *
 *   rsvd_lpid = LPID_RSVD;              // 0xfff: POWER8 and later have 12-bit LPIDs
 *   kvmppc_init_lpid(rsvd_lpid + 1);    // nr_lpids = 4096
 *   kvmppc_claim_lpid(host_lpid);       // 0: the host's own partition
 *   kvmppc_claim_lpid(rsvd_lpid);       // "reserved for use in partition switching"
 *
 * kvmppc_alloc_lpid() takes find_first_zero_bit(lpid_inuse), so a freed LPID is reused before
 * a higher one; none free → -ENOMEM ("No LPIDs free").
 */
import { VfioError } from '../vfio/index.ts';

/** LPID_RSVD (arch/powerpc/include/asm/reg.h): the last 12-bit LPID. */
export const LPID_RSVD = 0xfff;
/** The host's LPID (SPRN_LPID of a hypervisor-mode host). */
export const HOST_LPID = 0;

/**
 * KVM's LPID allocator (arch/powerpc/kvm/powerpc.c kvmppc_alloc_lpid / kvmppc_free_lpid): the
 * lowest free LPID; 0 (the host) and the last (LPID_RSVD) are never given out.
 */
export class LpidAllocator {
  readonly #inUse: Uint8Array;

  /** kvmppc_init_lpid(nrLpids), then the host's and the reserved LPID are claimed. */
  constructor(readonly nrLpids: number = LPID_RSVD + 1) {
    this.#inUse = new Uint8Array(nrLpids);
    this.claim(HOST_LPID);
    this.claim(nrLpids - 1);
  }

  /** kvmppc_claim_lpid(): marks `lpid` used (idempotent, like set_bit). */
  claim(lpid: number): void {
    if (lpid >= 0 && lpid < this.nrLpids) this.#inUse[lpid] = 1;
  }

  /**
   * kvmppc_alloc_lpid(): the lowest free LPID.
   * @throws VfioError ENOMEM when every LPID is in use.
   */
  alloc(): number {
    const lpid = this.#inUse.indexOf(0);
    if (lpid < 0) throw new VfioError('ENOMEM', `no LPIDs free (all ${this.nrLpids} in use)`);
    this.#inUse[lpid] = 1;
    return lpid;
  }

  /** kvmppc_free_lpid(): clears the bit (the host's and the reserved LPID included, as the kernel would). */
  free(lpid: number): void {
    if (lpid >= 0 && lpid < this.nrLpids) this.#inUse[lpid] = 0;
  }

  /**
   * Exactly `lpids` in use, every other LPID free (a state directory's allocator restored): one
   * pass instead of a kvmppc_free_lpid() per LPID. Out-of-range values are ignored, as by claim.
   */
  restore(lpids: readonly number[]): void {
    this.#inUse.fill(0);
    for (const l of lpids) this.claim(l);
  }

  /** Whether `lpid` is claimed (the host's 0 and the reserved LPID are from the start). */
  isInUse(lpid: number): boolean {
    return this.#inUse[lpid] === 1;
  }

  /** Every LPID in use, ascending (0 and the reserved one included). */
  inUse(): number[] {
    const out: number[] = [];
    this.#inUse.forEach((v, i) => {
      if (v === 1) out.push(i);
    });
    return out;
  }
}
