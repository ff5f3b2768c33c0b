package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/misabench/misabench/safetensors"
)

// File names of a Hugging Face checkpoint directory.
const (
	ConfigFile = "config.json"
	IndexFile  = "model.safetensors.index.json"
	SingleFile = "model.safetensors"
)

// Error reports a checkpoint that cannot serve: a missing or malformed
// config.json or index, a tensor that is missing, has the wrong shape or
// dtype, or a shard that breaks the safetensors rules. It names the
// checkpoint directory, the file (relative to it; empty when the rule is
// about the checkpoint as a whole), the tensor (if any) and the rule.
type Error struct {
	Checkpoint string
	File       string
	Tensor     string
	Rule       string
	Err        error // the cause: a *safetensors.Error, an *fs.PathError, ...
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("checkpoint " + e.Checkpoint + ": ")
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if e.Tensor != "" {
		b.WriteString("tensor " + e.Tensor + ": ")
	}
	b.WriteString(e.Rule)
	return b.String()
}

// Unwrap returns the cause, or nil.
func (e *Error) Unwrap() error { return e.Err }

// Checkpoint is an open Hugging Face checkpoint directory: its config and
// weight map are read by Open; shards are memory-mapped one by one, only
// when a tensor of theirs is first needed, and only the requested tensors
// are decoded. It is safe for concurrent use; Close must come last.
type Checkpoint struct {
	dir    string
	Config Config // read-only

	weightMap map[string]string // tensor name → shard file (relative)

	// hasIndexer: some tensor is named model.layers.*.self_attn.indexer.*;
	// otherIndexer: an example of a tensor under some other ".indexer."
	// module (a naming this package does not know), for the error.
	hasIndexer   bool
	otherIndexer string

	mu     sync.Mutex
	shards map[string]*safetensors.File
	closed bool
}

// Open reads dir/config.json and dir/model.safetensors.index.json (or,
// without an index, the header of dir/model.safetensors). No shard data is
// read.
func Open(dir string) (*Checkpoint, error) {
	c := &Checkpoint{dir: dir, shards: map[string]*safetensors.File{}}
	if st, err := os.Stat(dir); err != nil {
		return nil, c.pathErr("", err)
	} else if !st.IsDir() {
		return nil, c.errf("", "", "is not a directory (want a Hugging Face checkpoint directory with %s)", ConfigFile)
	}
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, c.pathErr(ConfigFile, err)
	}
	cfg, err := parseConfig(data, func(format string, args ...any) error {
		return c.errf(ConfigFile, "", format, args...)
	})
	if err != nil {
		return nil, err
	}
	c.Config = *cfg

	data, err = os.ReadFile(filepath.Join(dir, IndexFile))
	switch {
	case err == nil:
		if err := c.readIndex(data); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		// One unsharded file: its header is the weight map.
		f, err := c.shard(SingleFile)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, c.errf("", "", "has neither %s nor %s", IndexFile, SingleFile)
			}
			return nil, err
		}
		c.weightMap = map[string]string{}
		for _, t := range f.Tensors() {
			c.weightMap[t.Name] = SingleFile
		}
	default:
		return nil, c.pathErr(IndexFile, err)
	}
	for name := range c.weightMap {
		switch {
		case strings.HasPrefix(name, "model.layers.") && strings.Contains(name, ".self_attn.indexer."):
			c.hasIndexer = true
		case strings.Contains(name, ".indexer.") && (c.otherIndexer == "" || name < c.otherIndexer):
			c.otherIndexer = name
		}
	}
	return c, nil
}

// readIndex parses model.safetensors.index.json.
func (c *Checkpoint) readIndex(data []byte) error {
	var idx struct {
		WeightMap map[string]any `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return c.errf(IndexFile, "", "is not a JSON object with a weight_map: %v", err)
	}
	if len(idx.WeightMap) == 0 {
		return c.errf(IndexFile, "", "has no weight_map (or an empty one)")
	}
	c.weightMap = make(map[string]string, len(idx.WeightMap))
	for name, v := range idx.WeightMap {
		file, ok := v.(string)
		if !ok {
			return c.errf(IndexFile, name, "weight_map entry is %s, not a file name", show(v))
		}
		// A shard must lie inside the checkpoint: no absolute paths, no "..".
		if !filepath.IsLocal(file) {
			return c.errf(IndexFile, name, "shard %q is not a file inside the checkpoint directory", file)
		}
		c.weightMap[name] = filepath.Clean(file)
	}
	return nil
}

// Dir is the checkpoint directory as given to Open.
func (c *Checkpoint) Dir() string { return c.dir }

// Shard returns the shard file (relative to Dir) that holds a tensor, by
// the weight map.
func (c *Checkpoint) Shard(name string) (string, bool) {
	f, ok := c.weightMap[name]
	return f, ok
}

// TensorNames lists every tensor of the weight map, sorted.
func (c *Checkpoint) TensorNames() []string {
	names := make([]string, 0, len(c.weightMap))
	for n := range c.weightMap {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// OpenShards lists the shards mapped so far (for tests and diagnostics).
func (c *Checkpoint) OpenShards() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for s := range c.shards {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Close unmaps every shard. Closing twice is harmless.
func (c *Checkpoint) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var first error
	for name, f := range c.shards {
		if err := f.Close(); err != nil && first == nil {
			first = c.convert(err)
		}
		delete(c.shards, name)
	}
	return first
}

// shard maps a shard file (relative to dir) on first use.
func (c *Checkpoint) shard(file string) (*safetensors.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("checkpoint %s: closed", c.dir)
	}
	if f, ok := c.shards[file]; ok {
		return f, nil
	}
	f, err := safetensors.Open(filepath.Join(c.dir, file))
	if err != nil {
		return nil, c.convert(err)
	}
	c.shards[file] = f
	return f, nil
}

// tensor finds a tensor through the weight map and maps its shard.
func (c *Checkpoint) tensor(name string) (*safetensors.File, safetensors.TensorInfo, error) {
	file, ok := c.weightMap[name]
	if !ok {
		return nil, safetensors.TensorInfo{}, c.errf("", name, "missing")
	}
	f, err := c.shard(file)
	if err != nil {
		return nil, safetensors.TensorInfo{}, err
	}
	t, ok := f.Info(name)
	if !ok {
		return nil, t, c.errf(file, name, "listed in %s but not in the shard", IndexFile)
	}
	return f, t, nil
}

// errf builds an *Error.
func (c *Checkpoint) errf(file, tensor, format string, args ...any) *Error {
	return &Error{Checkpoint: c.dir, File: file, Tensor: tensor, Rule: fmt.Sprintf(format, args...)}
}

// pathErr reports a file of the checkpoint that cannot be read.
func (c *Checkpoint) pathErr(file string, err error) error {
	rule := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		rule = pe.Op + ": " + pe.Err.Error()
	}
	return &Error{Checkpoint: c.dir, File: file, Rule: rule, Err: err}
}

// convert turns a safetensors error into an *Error naming the shard
// relative to the checkpoint; system errors are wrapped as they are.
func (c *Checkpoint) convert(err error) error {
	var se *safetensors.Error
	if errors.As(err, &se) {
		return &Error{Checkpoint: c.dir, File: c.rel(se.File), Tensor: se.Tensor, Rule: se.Rule, Err: err}
	}
	return fmt.Errorf("checkpoint %s: %w", c.dir, err)
}

func (c *Checkpoint) rel(path string) string {
	if r, err := filepath.Rel(c.dir, path); err == nil && filepath.IsLocal(r) {
		return r
	}
	return path
}

// layerPrefix is where Hugging Face names a layer's indexer tensors (the
// attribute path of DeepseekV32Indexer / GlmMoeDsaIndexer in the model).
func layerPrefix(layer int) string {
	return "model.layers." + strconv.Itoa(layer) + ".self_attn.indexer."
}
