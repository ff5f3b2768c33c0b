package configs

import (
	"bytes"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestPresets(t *testing.T) {
	want := map[string]Preset{
		"deepseek-v3.2": {Name: "deepseek-v3.2", Heads: 64, HeadDim: 128, TopK: 2048, Layers: 61,
			RoPE: RoPE{Dims: 64, Interleaved: false}, QLoRARank: 1536, Hidden: 7168},
		"glm-5": {Name: "glm-5", Heads: 32, HeadDim: 128, TopK: 2048, Layers: 78,
			RoPE: RoPE{Dims: 64, Interleaved: true}, QLoRARank: 2048, Hidden: 6144},
	}
	for name, w := range want {
		p, err := LoadPreset(name)
		if err != nil {
			t.Fatalf("LoadPreset(%q): %v", name, err)
		}
		if p != w {
			t.Errorf("LoadPreset(%q) = %+v, want %+v", name, p, w)
		}
	}
	if p, _ := LoadPreset("deepseek-v3.2"); p.RoPE.Layout() != "neox" {
		t.Errorf("deepseek-v3.2 rope layout %q, want neox", p.RoPE.Layout())
	}
	if p, _ := LoadPreset("glm-5.yaml"); p.RoPE.Layout() != "interleaved" {
		t.Errorf("glm-5 rope layout %q, want interleaved", p.RoPE.Layout())
	}
	all, err := Presets()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Errorf("Presets() returned %d presets, want %d", len(all), len(want))
	}
	if _, err := LoadPreset("ci"); err == nil {
		t.Error("LoadPreset(ci) succeeded; ci.yaml is not a model preset")
	}
	for _, bad := range []string{"nope", "../go.mod", "", "configs/ci"} {
		if _, err := Read(bad); err == nil {
			t.Errorf("Read(%q) succeeded", bad)
		}
	}
}

// Every embedded file parses, and every experiment key is a plain scalar or
// a list (viper reads them as flag values).
func TestConfigsParse(t *testing.T) {
	names := Names()
	for _, n := range []string{"ci", "deepseek-v3.2", "glm-5"} {
		found := false
		for _, m := range names {
			found = found || m == n
		}
		if !found {
			t.Errorf("built-in config %q missing from %v", n, names)
		}
	}
	for _, n := range names {
		b, err := Read(n)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
			t.Fatalf("%s.yaml: %v", n, err)
		}
		for k, v := range doc {
			if k == "model" {
				continue
			}
			switch v.(type) {
			case string, int, float64, bool, []any:
			default:
				t.Errorf("%s.yaml: key %q has a %T value; experiment keys are flag values", n, k, v)
			}
		}
	}
}
