export { Graph, Value, isFloat, typedArrayFor, floatArray } from './ir.js';
export type { DType, Dim, Shape, FloatType, Node, TypedData, Initializer, Attrs } from './ir.js';
export * as op from './ops/index.js';
export { gradients } from './autodiff.js';
export { toModelProto, toOnnxBytes, OPSET } from './onnx.js';
export type { WriteOptions } from './onnx.js';
export { differentiableOps, knownOps } from './registry.js';
export { importGraph, importPlan, hostOf } from './import.js';
export type { HostArray, ImportPlan, ImportedGraph } from './import.js';
