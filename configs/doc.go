// Package configs holds misabench's model presets and experiment configs.
//
// The YAML files next to this package are embedded in the binary, so that a
// misabench carried to a machine without the repository still knows them:
// `--config ci` reads the built-in ci.yaml when no file named "ci" exists.
//
// Experiment configs are read by viper; their keys are the command-line flag
// names (methods, router, ctx, queries, ...). Model presets keep the model's
// own facts under a top-level `model:` key, so that a preset file is also a
// valid experiment config (it sets `preset`) and its facts never collide with
// a flag name such as `heads` (the routed head count h, not the model's H).
package configs
