/** Ridge regression by the normal equations, for the small linear probes of the analyses (D ≤ a few hundred). */

/** Ridge regression with an intercept: W is [(D+1) × K], the last row the intercept. */
export function ridge(X: number[][], Y: number[][], lambda: number): number[][] {
  const D = X[0].length + 1;
  const K = Y[0].length;
  const A = Array.from({ length: D }, () => new Float64Array(D));
  const Bm = Array.from({ length: D }, () => new Float64Array(K));
  for (let n = 0; n < X.length; n++) {
    const x = [...X[n], 1];
    for (let i = 0; i < D; i++) {
      for (let j = 0; j < D; j++) A[i][j] += x[i] * x[j];
      for (let k = 0; k < K; k++) Bm[i][k] += x[i] * Y[n][k];
    }
  }
  for (let i = 0; i < D - 1; i++) A[i][i] += lambda * X.length;
  return solve(A, Bm);
}

/** Solves A·W = B by Gaussian elimination with partial pivoting (A is small and symmetric). */
function solve(A: Float64Array[], B: Float64Array[]): number[][] {
  const n = A.length;
  const M = A.map((row, i) => [...row, ...B[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    const pivot = M[c][c] || 1e-12;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r][c] / pivot;
      if (f !== 0) for (let k = c; k < M[r].length; k++) M[r][k] -= f * M[c][k];
    }
  }
  return M.map((row, i) => row.slice(n).map((v) => v / (M[i][i] || 1e-12)));
}

/** X·W with W from `ridge` (its last row the intercept). */
export function ridgePredict(W: number[][], x: ArrayLike<number>): number[] {
  const D = W.length - 1;
  return W[0].map((_, j) => {
    let s = W[D][j];
    for (let i = 0; i < D; i++) s += x[i] * W[i][j];
    return s;
  });
}
