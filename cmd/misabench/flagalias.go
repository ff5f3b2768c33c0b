package main

import "github.com/spf13/pflag"

// servedModelAlias makes --model another spelling of --served-model (the
// name the issues and the serving engines use). The flag itself stays
// served-model because a config file's "model" key holds a model preset
// (configs/), not a served name.
func servedModelAlias(f *pflag.FlagSet) {
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "model" {
			name = "served-model"
		}
		return pflag.NormalizedName(name)
	})
}
