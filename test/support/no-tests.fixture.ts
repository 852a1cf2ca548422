/** Not a test of the project: a test file that declares no test (test/run-tests.test.ts). */
export const nothing = 0;
