/**
 * The seam between a `Session` and the socket, in libvfio-user's lib/tran.h style (the
 * dispatcher never touches a socket): outbound, the session sends framed replies and may
 * close; inbound, the transport hands it whole messages, asks where a large body goes before
 * receiving it, and reports the close. `Connection` (wire/transport.ts, a UNIX socket with
 * SCM_RIGHTS) is the transport `VfioUserServer` gives its sessions; a test may give a
 * `Connection` over one end of a socketpair(2), and drive the handlers in process.
 */
import type { FastPathTable } from '../../native/index.ts';
import type { BodyPlacement, CloseReason, FramedMessage, MessageHeader } from '../wire/index.ts';

/** What a session needs of its transport: send a message, close, know it is closed. */
export interface MessageTransport {
  /** True once closed (by either end); sending is then an error. */
  readonly closed: boolean;
  /**
   * Sends one message: `header` (the transport computes its size) and payload `parts`, with
   * `fds` (SCM_RIGHTS; the caller keeps them). `borrowed` parts are views of live memory the
   * transport must copy if it cannot send them at once.
   * @throws Error when closed; SystemCallError (e.g. EMFILE) when a waiting message's fds cannot
   *   be duplicated.
   */
  send(
    header: MessageHeader,
    parts?: readonly Uint8Array[],
    fds?: readonly number[],
    borrowed?: boolean,
  ): void;
  /** Closes (idempotent); the receiver's `handleClose` follows. */
  close(): void;
  /**
   * Stops handing out messages and reading until `resume` (optional: a receiver that waits
   * keeps what still arrives in order itself).
   */
  pause?(): void;
  /** Undoes `pause`. */
  resume?(): void;
  /**
   * Serves `table`'s plain ranges natively from now on (null: stops); optional, a transport
   * without a native fast path leaves every message to the receiver.
   */
  attachFastPath?(table: FastPathTable | null): void;
}

/** What a transport delivers to its session (the inbound path). */
export interface MessageReceiver {
  /** One whole message, in the order received; its fds are the receiver's. */
  handleMessage(message: FramedMessage): void;
  /** Where the body of the message with `header` goes, or null for a body of its own. */
  placeBody(header: MessageHeader): BodyPlacement | null;
  /** The transport closed; called once. */
  handleClose(reason: CloseReason): void;
}
