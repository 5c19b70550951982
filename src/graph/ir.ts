/**
 * The typed graph that every tvlens model, loss and optimizer is built in.
 *
 * A Graph holds Values (typed tensors, possibly with symbolic dimensions) and Nodes (ONNX ops in
 * build order, which is a topological order). Ops are added through `Graph.apply`, which runs the
 * op's shape inference at build time, so a shape mismatch fails where it is made, naming the node.
 */
import { GraphError } from '../errors.js';
import { opDef } from './registry.js';

export type FloatType = 'float32' | 'float64';
export type DType = FloatType | 'int64' | 'int32' | 'bool';
/** A dimension is a number, or a name for a size only known at run time ("batch", "seq"). */
export type Dim = number | string;
export type Shape = readonly Dim[];
export type AttrValue = number | string | readonly number[];
export type Attrs = Readonly<Record<string, AttrValue>>;
export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export const isFloat = (t: DType): t is FloatType => t === 'float32' || t === 'float64';

export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly producer: Node | null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}[${this.shape.join(', ')}]`;
  }
}

export interface Node {
  readonly op: string;
  readonly name: string;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly attrs: Attrs;
  /** Build-time facts that are not written to ONNX (for example, that autodiff stops here). */
  readonly meta: { readonly stopGradient?: boolean; readonly vjp?: Vjp };
}

/**
 * The gradient rule of a layer built from several nodes, set on its last node: autodiff sends the
 * gradient of that node's output straight to `inputs` by `rule`, past the nodes the layer is made of.
 */
export interface Vjp {
  readonly inputs: readonly Value[];
  readonly rule: (gy: Value) => readonly (Value | null)[];
}

/** A tensor whose value is known when the graph is built: a parameter or a constant. */
export interface Initializer {
  readonly value: Value;
  data: TypedData;
  /** Whether AdamW's weight decay applies (not to biases or LayerNorm gains). */
  readonly decay?: boolean;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  /** Trainable weights, in creation order. Written as graph inputs for training, initializers otherwise. */
  readonly params: Initializer[] = [];
  readonly constants: Initializer[] = [];
  private readonly names = new Set<string>();
  private readonly constantData = new Map<Value, TypedData>();
  private readonly scopes: string[] = [];
  private counter = 0;

  constructor(
    /** The float type of parameters and of constants made with `constLike`. */
    readonly floatType: FloatType = 'float32',
  ) {}

  /** Runs `fn` with node names prefixed by `prefix` (as in `blocks.0.attn/MatMul_3`). */
  scope<T>(prefix: string, fn: () => T): T {
    this.scopes.push(prefix);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    const v = this.newValue(name, dtype, shape, null);
    this.inputs.push(v);
    return v;
  }

  param(name: string, shape: readonly number[], data: TypedData, options: { decay?: boolean } = {}): Value {
    checkDataSize(name, shape, data);
    const v = this.newValue(name, this.floatType, shape, null);
    this.params.push({ value: v, data, decay: options.decay ?? true });
    return v;
  }

  constant(data: TypedData, dtype: DType, shape: readonly number[], name?: string): Value {
    const v = this.newValue(name ?? this.fresh('const'), dtype, shape, null);
    checkDataSize(v.name, shape, data);
    this.constants.push({ value: v, data });
    this.constantData.set(v, data);
    return v;
  }

  /** Marks `value` as a graph output, under `name` if given (through an Identity node). */
  output(value: Value, name?: string): Value {
    const out = name && name !== value.name ? this.apply('Identity', [value], {}, { outputNames: [name] })[0] : value;
    if (!this.outputs.includes(out)) this.outputs.push(out);
    return out;
  }

  /**
   * Adds one node. The op's registered shape inference gives the output types; its errors name
   * this node. `outputNames` fixes the names of the outputs (hook points use this).
   */
  apply(
    op: string,
    inputs: readonly Value[],
    attrs: Attrs = {},
    options: { outputNames?: readonly string[]; stopGradient?: boolean; vjp?: Vjp; nodeName?: string; shapeHint?: Shape } = {},
  ): Value[] {
    const nodeName = options.nodeName ?? this.fresh(op);
    for (const x of inputs) {
      if (x.graph !== this) throw new GraphError(`input ${x.name} belongs to another graph`, nodeName);
    }
    const def = opDef(op, nodeName);
    const types = def.infer(inputs, attrs, nodeName);
    const outputs: Value[] = [];
    const node: Node = { op, name: nodeName, inputs, outputs, attrs, meta: { stopGradient: options.stopGradient, vjp: options.vjp } };
    types.forEach((t, i) => {
      if (i === 0 && options.shapeHint) t = { dtype: t.dtype, shape: options.shapeHint };
      const name = options.outputNames?.[i] ?? this.fresh(`${op}_out`);
      outputs.push(this.newValue(name, t.dtype, t.shape, node));
    });
    this.nodes.push(node);
    return outputs;
  }

  /** A unique name built from `base` and the current scope. */
  fresh(base: string): string {
    const prefix = this.scopes.length ? `${this.scopes.join('/')}/` : '';
    let name: string;
    do name = `${prefix}${base}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }

  /** The data of a constant made with `constant`, or undefined for any other value. */
  constantValue(v: Value): TypedData | undefined {
    return this.constantData.get(v);
  }

  valueNames(): ReadonlySet<string> {
    return this.names;
  }

  private newValue(name: string, dtype: DType, shape: Shape, producer: Node | null): Value {
    if (this.names.has(name)) throw new GraphError(`duplicate tensor name '${name}'`, producer?.name);
    this.names.add(name);
    return new Value(this, name, dtype, shape, producer);
  }
}

function checkDataSize(name: string, shape: readonly number[], data: TypedData): void {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) {
    throw new GraphError(`data has ${data.length} elements but shape [${shape.join(', ')}] needs ${size}`, name);
  }
}

export function typedArrayFor(dtype: DType, size: number): TypedData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(size);
    case 'float64':
      return new Float64Array(size);
    case 'int64':
      return new BigInt64Array(size);
    case 'int32':
      return new Int32Array(size);
    case 'bool':
      return new Uint8Array(size);
  }
}

export function floatArray(dtype: FloatType, values: ArrayLike<number>): Float32Array | Float64Array {
  return dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
}
