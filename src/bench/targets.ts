/** The figures, with their targets: what `compare.js` and `scripts/bench-rounds.ts` tabulate. */
export const TABLE = [
  ['train_step_over_forward', '≤ 3.5'],
  ['patch_attribution_speedup', '≥ 50'],
  ['foreign_tv_search_over_naive', '≤ 0.6'],
  ['cache_overhead_ratio', '≤ 1.2'],
  ['patch_naive_over_sweep', '≥ 5'],
  ['tv_search_over_forward', '≤ 2'],
  ['tvp_step_over_plain_step', '≤ 1.6'],
  ['matmul_2048_gflops', ''],
  ['forward_ms', ''],
] as const;
