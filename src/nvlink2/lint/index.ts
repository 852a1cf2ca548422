/**
 * The doctor's linter: rules NV001-NV102 over an NVLink2 view of any tree, their findings with
 * locations (DTB offsets, DTS line:column), fixes (fdtput scripts, .dtso overlays) and reports
 * (text, JSON, SARIF 2.1.0). Other folders import it through src/nvlink2/index.ts.
 */
export { explainRule, ruleTable } from './explain.ts';
export { shellWord } from './fix-render.ts';
export { failsAt, lintTree } from './lint.ts';
export {
  attachLocations,
  blobLocator,
  dtsLocator,
  type Locator,
  liveLocator,
  nameLocator,
} from './locate.ts';
export {
  combinedOverlay,
  combinedScript,
  formatFindingsText,
  reportJson,
} from './report-format.ts';
export { findRule } from './rules.ts';
export { toSarif } from './sarif.ts';
export { PHANDLE_PROPERTIES } from './tree-view.ts';
export type { Level } from './types.ts';
