package niah

import "time"

// SchemaV1 is the schema string of a NIAH result file.
const SchemaV1 = "misabench.niah/v1"

// Cell is one (context length, depth) point of a grid.
type Cell struct {
	Ctx   int     `json:"ctx"`
	Depth float64 `json:"depth"` // 0..1 of the context
	// Score is the cell's value in [0, 1]: at the indexer level the needle
	// retention's minimum over layers; at the model level the mean score
	// of the samples. A cell is green at 1.
	Score float64 `json:"score"`
	// PerLayer is the retention of each layer (indexer level only), in
	// the order of Grid.Layers.
	PerLayer []float64 `json:"per_layer,omitempty"`
	// N is the number of question rows (indexer) or samples (model)
	// averaged.
	N int `json:"n"`
}

// Grid is one method's heatmap: Cells[i][j] is Depths[i] × Contexts[j].
type Grid struct {
	Method   string    `json:"method"`
	Level    string    `json:"level"` // "indexer" or "model"
	Contexts []int     `json:"contexts"`
	Depths   []float64 `json:"depths"`
	Layers   []int     `json:"layers,omitempty"`
	Cells    [][]Cell  `json:"cells"`
}

// Result is a whole NIAH run.
type Result struct {
	Schema  string         `json:"schema"`
	Version string         `json:"version"`
	Backend string         `json:"backend,omitempty"`
	Config  map[string]any `json:"config,omitempty"`
	Grids   []Grid         `json:"grids"`
	Notes   []string       `json:"notes,omitempty"`
	// Created is when the run finished (UTC); WallSeconds how long it
	// took, grid set-up, generation and selection included.
	Created     time.Time `json:"created,omitzero"`
	WallSeconds float64   `json:"wall_seconds,omitempty"`
}
