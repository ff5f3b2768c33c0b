// Package niah runs needle-in-a-haystack tests of the indexers: at the
// indexer level, the share of a planted needle's tokens that each method
// selects for the question rows (DESIGN.md §2, per layer and the minimum
// over layers), and at the model level, the classic passkey test against an
// OpenAI-compatible server. Both fill a grid of context lengths × needle
// depths, drawn as red–amber–green heatmaps.
package niah
