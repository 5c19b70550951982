/**
 * Moved: feeds to tasks/feeds.ts, scoring to tasks/score.ts (one implementation for training
 * evaluation, the analyses and patching). Re-exported here until every importer has moved.
 */
export { batchFeeds } from '../tasks/feeds.js';
export { type ShotCurve, argmax, scorePositions, shotCurve } from '../tasks/score.js';
