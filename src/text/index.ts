/**
 * Text for people and messages: hex numbers, plain tables, and the one-line errors of JSON
 * members checked where they are read (JsonReader). A leaf like trace and native:
 * it imports nothing of the project, so any layer (fdt included) may use it.
 */
export { hex, hexDigits } from './hex.ts';
export { type JsonObject, JsonReader, parseJson, shown } from './json-reader.ts';
export { layoutTable, type TableColumn, type TextTable, type TitledColumn } from './table.ts';
