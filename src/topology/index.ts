/**
 * The machine as a picture: a model of chips, PHBs, NPUs, bridges, GPUs and NVLinks from a host
 * (or a running serve), laid out by Graphviz (wasm) as SVG, HTML or DOT.
 */
export { sizeText, topologyDot } from './dot.ts';
export { type LiveState, LiveStateError, readLive } from './live.ts';
export { buildTopology, type TopologyModel } from './model.ts';
export { renderSvg, topologyHtml } from './render.ts';
