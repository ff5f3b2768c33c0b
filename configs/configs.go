package configs

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed *.yaml
var files embed.FS

// Names lists the built-in config names (file names without ".yaml"), sorted.
func Names() []string {
	ents, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Read returns the built-in config called name ("ci" or "ci.yaml").
func Read(name string) ([]byte, error) {
	n := strings.TrimSuffix(path.Base(name), ".yaml")
	if n != strings.TrimSuffix(name, ".yaml") || n == "" || n == "." {
		return nil, fmt.Errorf("no built-in config %q (have %s)", name, strings.Join(Names(), ", "))
	}
	b, err := files.ReadFile(n + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in config %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// RoPE describes how a model's indexer applies rotary position embedding.
type RoPE struct {
	// Dims is the number of head dimensions that carry RoPE.
	Dims int `yaml:"dims" json:"dims"`
	// Offset is the first rotated dimension (0: the first Dims dims).
	Offset int `yaml:"offset" json:"offset"`
	// Interleaved is true for GPT-J style (adjacent pairs), false for
	// NeoX style (first half / second half).
	Interleaved bool `yaml:"interleaved" json:"interleaved"`
}

// Layout is "interleaved" or "neox".
func (r RoPE) Layout() string {
	if r.Interleaved {
		return "interleaved"
	}
	return "neox"
}

// Preset is the indexer geometry of one model (DESIGN.md §1, papers.md §1.3).
type Preset struct {
	Name string `yaml:"name" json:"name"`
	// Heads is H, the number of indexer heads.
	Heads   int `yaml:"heads" json:"heads"`
	HeadDim int `yaml:"head_dim" json:"head_dim"`
	TopK    int `yaml:"topk" json:"topk"`
	// Layers is the number of transformer layers that carry an indexer.
	Layers    int  `yaml:"layers" json:"layers"`
	RoPE      RoPE `yaml:"rope" json:"rope"`
	QLoRARank int  `yaml:"q_lora_rank" json:"q_lora_rank"`
	Hidden    int  `yaml:"hidden" json:"hidden"`
}

// Validate checks that the preset is complete and consistent.
func (p Preset) Validate() error {
	switch {
	case p.Name == "":
		return fmt.Errorf("preset: empty name")
	case p.Heads < 1, p.HeadDim < 1, p.TopK < 1, p.Layers < 1, p.QLoRARank < 1, p.Hidden < 1:
		return fmt.Errorf("preset %s: heads, head_dim, topk, layers, q_lora_rank and hidden must be positive", p.Name)
	case p.RoPE.Dims < 0 || p.RoPE.Offset < 0 || p.RoPE.Offset+p.RoPE.Dims > p.HeadDim || p.RoPE.Dims%2 != 0:
		return fmt.Errorf("preset %s: rope dims %d at offset %d do not fit head_dim %d in pairs", p.Name, p.RoPE.Dims, p.RoPE.Offset, p.HeadDim)
	}
	return nil
}

// LoadPreset reads the model preset called name ("deepseek-v3.2", "glm-5").
func LoadPreset(name string) (Preset, error) {
	b, err := Read(name)
	if err != nil {
		return Preset{}, err
	}
	var doc struct {
		Model *Preset `yaml:"model"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(false)
	if err := dec.Decode(&doc); err != nil {
		return Preset{}, fmt.Errorf("config %s: %w", name, err)
	}
	if doc.Model == nil {
		return Preset{}, fmt.Errorf("config %s is not a model preset (no model: section)", name)
	}
	if err := doc.Model.Validate(); err != nil {
		return Preset{}, err
	}
	return *doc.Model, nil
}

// Presets returns every built-in model preset, sorted by name.
func Presets() ([]Preset, error) {
	var out []Preset
	for _, n := range Names() {
		b, _ := Read(n)
		if !bytes.Contains(b, []byte("\nmodel:")) && !bytes.HasPrefix(b, []byte("model:")) {
			continue
		}
		p, err := LoadPreset(n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
