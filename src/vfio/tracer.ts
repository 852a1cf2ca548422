/**
 * What the vfio-pci core reports to a tracer: region accesses, interrupts raised, open and
 * close. Every member is optional; a device without a tracer pays one undefined check.
 * (src/trace provides sinks; the core only knows this interface.)
 */
export interface RegionAccessEvent {
  readonly device: string;
  readonly index: number;
  readonly offset: bigint;
  readonly count: number;
  readonly write: boolean;
}

/** An interrupt raised: device, IRQ index, vector, and whether an eventfd was signalled. */
export interface InterruptEvent {
  readonly device: string;
  readonly index: number;
  readonly vector: number;
  /** False when nothing was signalled (no eventfd, or INTx masked and left pending). */
  readonly delivered: boolean;
}

/**
 * Hooks the vfio-pci core calls for region accesses, interrupts, opens and closes (all optional).
 */
export interface VfioTracer {
  regionAccess?(event: RegionAccessEvent): void;
  interrupt?(event: InterruptEvent): void;
  deviceOpen?(device: string): void;
  deviceClose?(device: string): void;
}
