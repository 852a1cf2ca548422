/**
 * Text for people and messages: hex numbers and plain tables. A leaf like trace and native:
 * it imports nothing of the project, so any layer (fdt included) may use it.
 */
export { hex, hexDigits } from './hex.ts';
export { layoutTable, type TableColumn, type TextTable, type TitledColumn } from './table.ts';
