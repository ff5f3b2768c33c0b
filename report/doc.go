// Package report renders an eval.Result for people and for other programs:
// text tables (Unicode, ASCII or Markdown) through tablewriter, CSV, JSON,
// and the per-layer recall plot (PNG and SVG) through gonum/plot.
//
// Every function writes to an io.Writer or, for files, atomically through
// WriteAtomic, so that an interrupted run never leaves a half-written
// figure or table next to complete ones.
package report
