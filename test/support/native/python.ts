/**
 * The python3 the tests start as a second process (the fd and memfd peers, the vfio-user test
 * client and server, the hostile server): the system's `/usr/bin/python3` when there is one,
 * else `python3` on PATH. A version manager's shim first on PATH (pyenv's is a bash script that
 * runs pyenv to pick a version) costs ~0.6 s of CPU per start against ~0.06 s for the
 * interpreter, and the suite starts python dozens of times.
 */
import { existsSync } from 'node:fs';

/** The python3 to spawn: `/usr/bin/python3` when it exists, else `python3` from PATH. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
