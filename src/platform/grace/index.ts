/** Grace Hopper / Grace Blackwell trees for the nvgrace-gpu variant. */

export { GRACE_FLAG_SPEC, type GraceFlags, graceOptionsFromFlags } from './flags.ts';
export { generateGrace, graceGpuDomain, graceGpuName } from './generate.ts';
export {
  DEFAULT_BLACKWELL_GPU_MEM,
  DEFAULT_GPU_MEM_BASE,
  DEFAULT_HOPPER_GPU_MEM,
  type GraceMachine,
  type GraceOmitFault,
  GraceOptionError,
  type GraceOptions,
  type MigDvsecMode,
  resolveGraceOptions,
} from './options.ts';
export * from './properties.ts';
