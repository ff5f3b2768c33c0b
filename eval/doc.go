// Package eval turns selections into numbers: the per-row metrics of
// DESIGN.md §2 (recall, IoU, score mass, router precision, cost), their
// aggregation per layer, per method and per group, the result file schema
// ("misabench.recall/v1"), and the regression check that compares a run with
// a committed baseline.
//
// Conventions that every number in a result follows:
//
//   - Rows that see at most k keys select every visible key, so every method
//     is exact on them by definition. They are counted (Stats.Trivial) but
//     left out of every Summary, so that short prefixes do not inflate means.
//   - Percentiles use linear interpolation between order statistics
//     (NumPy's default "linear" method, Hyndman–Fan type 7), so a P5 written
//     here can be checked with numpy.percentile(x, 5).
//   - An empty Summary (N = 0) has zero Mean, P5 and Min; views print it as a
//     dash. NaN is never stored, because JSON cannot carry it.
package eval
