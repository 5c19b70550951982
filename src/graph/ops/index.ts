/** Every op builder. Importing this module also registers every op's rules. */
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './linalg.js';
export * from './nn.js';
export { constLike, scalar, int64s, shapeOf, reshapeLike } from './constants.js';
export * from './composite.js';
export * from './positions.js';
