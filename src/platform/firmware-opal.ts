/**
 * OPAL constants the NPU2 firmware calls use: return codes and tokens (skiboot
 * include/opal-api.h) and the MSR bits of the context calls (Linux arch/powerpc/include/asm/reg.h).
 */

/** OPAL return codes (skiboot include/opal-api.h). */
export const OpalRc = {
  SUCCESS: 0,
  PARAMETER: -1,
  BUSY: -2,
  PARTIAL: -3,
  CONSTRAINED: -4,
  CLOSED: -5,
  HARDWARE: -6,
  UNSUPPORTED: -7,
  PERMISSION: -8,
  NO_MEM: -9,
  RESOURCE: -10,
  INTERNAL_ERROR: -11,
  BUSY_EVENT: -12,
  HARDWARE_FROZEN: -13,
  WRONG_STATE: -14,
  ASYNC_COMPLETION: -15,
  EMPTY: -16,
} as const;

/** A name of `OpalRc` (without the `OPAL_` prefix). */
export type OpalRcName = keyof typeof OpalRc;

/** "OPAL_RESOURCE" for -10; a number's decimal text for codes skiboot does not name. */
export function opalRcName(rc: number): string {
  for (const [name, v] of Object.entries(OpalRc)) if (v === rc) return `OPAL_${name}`;
  return String(rc);
}

/** OPAL call tokens of the NPU context calls (skiboot include/opal-api.h). */
export const OpalToken = {
  NPU_INIT_CONTEXT: 146,
  NPU_DESTROY_CONTEXT: 147,
  NPU_MAP_LPAR: 148,
} as const;

/** MSR bits (arch/powerpc/include/asm/reg.h: MSR_SF_LG 63, MSR_HV_LG 60, MSR_PR_LG 14, MSR_DR_LG 4). */
export const Msr = {
  DR: 1n << 4n,
  PR: 1n << 14n,
  HV: 1n << 60n,
  SF: 1n << 63n,
} as const;

/** skiboot hw/npu2.c: NPU2_VALID_ATS_MSR_BITS (MSR_DR | MSR_HV | MSR_PR | MSR_SF). */
export const NPU2_VALID_ATS_MSR_BITS = Msr.DR | Msr.HV | Msr.PR | Msr.SF;

/** skiboot include/npu2-regs.h: NPU2_XTS_BDF_MAP_SIZE, entries of the BDF→LPID table per NPU. */
export const NPU2_XTS_BDF_MAP_SIZE = 16;

/** skiboot hw/npu2.c atsd_lpar_regs[]: NPU2_XTS_MMIO_ATSD0..7_LPARID. */
export const NPU2_ATSD_REGISTERS = 8;
