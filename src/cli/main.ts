#!/usr/bin/env node
/**
 * `vfio-nvlink2`: the command-line entry, the package's bin. The command line itself
 * (dispatch, error lines, exit statuses) is cli-main.ts's; this file runs it on this process.
 */
import { runCommandLine } from './cli-main.ts';
import { guardOutput } from './output.ts';

guardOutput();
runCommandLine(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
