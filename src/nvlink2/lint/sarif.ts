/**
 * The report as SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format, errata 01): one
 * run, the rules as reportingDescriptors with their default level, each finding a result with a
 * physical location (DTS region by line/column, DTB region by byte offset, a /proc/device-tree
 * file) and a logical one (node path, property), a stable partial fingerprint, and the kernels,
 * replayed effects and fixes (fdtput, .dtso) in its property bag. Validated in a test against
 * the official schema (test/fixtures/sarif-schema-2.1.0.json).
 */
import { createHash } from 'node:crypto';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fdtputCommands, overlayText } from './fix-render.ts';
import type { LintReport } from './lint.ts';
import { RULES } from './rules.ts';
import type { Finding, Location } from './types.ts';

/** The JSON schema of SARIF 2.1.0 (OASIS, errata 01) that `$schema` names. */
export const SARIF_SCHEMA_URI =
  'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';

/** A location's file as a URI reference: relative paths stay relative (to the run's directory). */
function artifactUri(file: string): string {
  if (isAbsolute(file)) return pathToFileURL(file).href;
  return encodeURI(file.replaceAll('\\', '/')).replaceAll('#', '%23').replaceAll('?', '%3F');
}

function region(l: Location) {
  if (l.line !== undefined) {
    return {
      startLine: l.line,
      startColumn: l.column ?? 1,
      ...(l.endLine !== undefined ? { endLine: l.endLine } : {}),
      ...(l.endColumn !== undefined ? { endColumn: l.endColumn } : {}),
    };
  }
  if (l.offset !== undefined) return { byteOffset: l.offset };
  return undefined;
}

function fingerprint(f: Finding): string {
  return createHash('sha256')
    .update(`${f.ruleId}\0${f.node}\0${f.property ?? ''}`)
    .digest('hex')
    .slice(0, 32);
}

/** Options of `toSarif`: the tool's version and the blob fix commands edit. */
export interface SarifOptions {
  readonly toolVersion: string;
  /** The blob name fdtput commands edit. */
  readonly dtb: string;
}

/** The SARIF log of a report. */
export function toSarif(report: LintReport, options: SarifOptions) {
  const artifacts: string[] = [];
  const artifactIndex = (file: string) => {
    const uri = artifactUri(file);
    let i = artifacts.indexOf(uri);
    if (i < 0) i = artifacts.push(uri) - 1;
    return i;
  };
  const results = report.findings.map((f) => {
    const ruleIndex = RULES.findIndex((r) => r.id === f.ruleId);
    const l = f.location;
    const physical = l
      ? {
          physicalLocation: {
            artifactLocation: { uri: artifactUri(l.file), index: artifactIndex(l.file) },
            ...(region(l) ? { region: region(l) } : {}),
          },
        }
      : {};
    return {
      ruleId: f.ruleId,
      ruleIndex,
      level: f.level,
      message: { text: f.message },
      locations: [
        {
          ...physical,
          logicalLocations: [
            {
              name: f.property ?? (f.node.slice(f.node.lastIndexOf('/') + 1) || '/'),
              fullyQualifiedName: f.property !== undefined ? `${f.node}:${f.property}` : f.node,
              kind: f.property !== undefined ? 'member' : 'object',
            },
          ],
        },
      ],
      partialFingerprints: { 'nodePropertyRule/v1': fingerprint(f) },
      properties: {
        kernels: f.kernels,
        functions: f.functions,
        effects: f.effects,
        ...(f.fix
          ? {
              fix: {
                description: f.fix.description,
                fdtput: fdtputCommands(f.fix, options.dtb),
                dtso: overlayText([{ fix: f.fix, comment: `${f.ruleId} ${f.node}` }]),
              },
            }
          : {}),
      },
    };
  });
  return {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0' as const,
    runs: [
      {
        tool: {
          driver: {
            name: 'vfio-nvlink2 dt doctor',
            version: options.toolVersion,
            rules: RULES.map((r) => ({
              id: r.id,
              name: r.name,
              shortDescription: { text: r.summary },
              fullDescription: { text: `${r.summary}. ${r.impact}.` },
              help: {
                text: `${r.impact}. Kernels: ${r.kernels}. Sources: ${r.sources.join('; ')}. Run vfio-nvlink2 dt doctor --explain ${r.id}.`,
              },
              defaultConfiguration: { level: r.level },
              properties: {
                kernels: r.kernels,
                sources: r.sources,
                fixable: r.fixable,
                tags: ['nvlink2', 'device-tree'],
              },
            })),
          },
        },
        invocations: [
          {
            executionSuccessful: report.hostError === null,
            toolExecutionNotifications: [
              ...report.hostWarnings.map((w) => ({
                level: 'warning' as const,
                message: { text: w },
              })),
              ...(report.hostError
                ? [{ level: 'error' as const, message: { text: report.hostError } }]
                : []),
            ],
          },
        ],
        artifacts: artifacts.map((uri) => ({ location: { uri } })),
        columnKind: 'unicodeCodePoints' as const,
        results,
        properties: { kernel: report.kernel, source: report.source },
      },
    ],
  };
}
