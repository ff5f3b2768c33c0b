package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/misabench/misabench/configs"
)

// envPrefix is the prefix of the environment variables that set flags:
// MISABENCH_HEADS sets --heads, MISABENCH_ROUTER_POOL sets --router-pool.
const envPrefix = "MISABENCH"

// globalOptions are the root's persistent flags.
type globalOptions struct {
	Config  string
	Format  string
	Device  string
	Workers int
}

// app is what the command tree shares: streams, clock, the per-root viper,
// the persistent flags, and the run functions (tests replace them to see
// the options a command line resolves to without running the work).
type app struct {
	out, errOut io.Writer
	errTTY      bool
	now         func() time.Time
	v           *viper.Viper
	global      globalOptions

	recallF     func(context.Context, *RecallOptions) error
	regressF    func(context.Context, *RegressOptions) error
	traceGenF   func(context.Context, *TraceGenOptions) error
	inspectF    func(context.Context, *TraceInspectOptions) error
	validateF   func(context.Context, *TraceValidateOptions) error
	kernelF     func(context.Context, *KernelOptions) error
	devicesF    func(context.Context, *DevicesOptions) error
	niahF       func(context.Context, *NiahOptions) error
	configFiles []string // the config file read, for messages
}

func newApp(out, errOut io.Writer) *app {
	return &app{
		out:       out,
		errOut:    errOut,
		now:       time.Now,
		recallF:   runRecall,
		regressF:  runRegress,
		traceGenF: runTraceGen,
		inspectF:  runTraceInspect,
		validateF: runTraceValidate,
		kernelF:   runKernel,
		devicesF:  runDevices,
		niahF:     runNiah,
	}
}

// newRootCmd builds the whole command tree. It holds no global state: each
// call gets its own viper instance.
func newRootCmd(a *app) *cobra.Command {
	a.v = viper.New()
	a.v.SetEnvPrefix(envPrefix)
	a.v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	a.v.AutomaticEnv()

	var recallCmd *cobra.Command
	root := &cobra.Command{
		Use:   "misabench",
		Short: "Measure how much of DSA's indexer MISA, MISA† and HISA can skip",
		Long: `misabench runs DeepSeek Sparse Attention's dense indexer (DSA) and its cheaper
replacements — MISA (routed heads), MISA† (routed heads, then re-ranked) and
HISA (blocks first) — on indexer traces, and reports how many of DSA's tokens
each one keeps.

With no command, misabench runs "recall" (and takes its flags): with no --trace,
on the built-in synthetic default.

Every flag can also come from --config FILE.yaml (keys are the flag names) or
from a MISABENCH_* environment variable (MISABENCH_HEADS, MISABENCH_ROUTER_POOL);
a flag given on the command line wins over the environment, which wins over
the config file.

Exit codes: 0 ok, 1 a regression or a failed check, 2 bad usage or bad input.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.applyConfig(cmd)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			// The root runs recall. It carries hidden copies of recall's
			// flags, sharing their values, which PersistentPreRunE has
			// already filled from the config file and the environment.
			recallCmd.SetContext(cmd.Context())
			return recallCmd.RunE(recallCmd, args)
		},
	}
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})

	pf := root.PersistentFlags()
	pf.StringVar(&a.global.Config, "config", "", "read flag values from this YAML `file` (or a built-in config: "+strings.Join(configs.Names(), ", ")+")")
	pf.StringVar(&a.global.Format, "format", "table", "output on stdout: table, json or csv")
	pf.StringVar(&a.global.Device, "device", "cpu", "backend: cpu, gpu, or auto (the GPU when there is one)")
	pf.IntVar(&a.global.Workers, "workers", 0, "CPU worker goroutines (0: one per core)")

	recallCmd = newRecallCmd(a)
	recallCmd.Flags().VisitAll(func(f *pflag.Flag) {
		c := *f
		c.Hidden = true
		root.Flags().AddFlag(&c)
	})
	root.AddCommand(recallCmd, newRegressCmd(a), newTraceCmd(a), newKernelCmd(a), newDevicesCmd(a), newNiahCmd(a), newLongBenchCmd(a), newVersionCmd(a))
	return root
}

// applyConfig reads --config (or MISABENCH_CONFIG) into the viper instance,
// refuses unknown keys, and sets every flag of cmd that the command line left
// alone from the environment or the config file.
func (a *app) applyConfig(cmd *cobra.Command) error {
	path := a.global.Config
	if f := cmd.Flags().Lookup("config"); f != nil && !f.Changed {
		if env := a.v.GetString("config"); env != "" {
			path = env
		}
	}
	if path != "" {
		if err := a.readConfig(cmd.Root(), path); err != nil {
			return err
		}
	}
	return a.setFromConfig(cmd.Flags())
}

func (a *app) readConfig(root *cobra.Command, path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if eb, eerr := configs.Read(path); eerr == nil {
			b, err = eb, nil
		} else if !strings.ContainsAny(path, `/\`) && filepath.Ext(path) == "" {
			return usageErrorf("config %q: no such file, and %v", path, eerr)
		}
	}
	if err != nil {
		return usageErrorf("config: %v", err)
	}
	typ := strings.TrimPrefix(filepath.Ext(path), ".")
	switch typ {
	case "yml", "yaml", "json", "toml":
	default:
		typ = "yaml"
	}
	a.v.SetConfigType(typ)
	if err := a.v.ReadConfig(bytes.NewReader(b)); err != nil {
		return usageErrorf("config %s: %v", path, err)
	}
	a.configFiles = append(a.configFiles, path)

	known := map[string]bool{"model": true} // model presets keep their facts under model:
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	var unknown []string
	for k := range a.v.AllSettings() {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return usageErrorf("config %s: unknown key(s) %s (keys are flag names)", path, strings.Join(unknown, ", "))
	}
	if a.v.IsSet("config") && a.v.InConfig("config") {
		return usageErrorf("config %s: a config file cannot name another one (key \"config\")", path)
	}
	return nil
}

// setFromConfig sets every flag in fs that was not given on the command line
// from the environment or the config file, in that order of precedence.
func (a *app) setFromConfig(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		if !a.v.IsSet(f.Name) {
			return
		}
		val := configString(a.v.Get(f.Name))
		if serr := fs.Set(f.Name, val); serr != nil {
			src := "config " + strings.Join(a.configFiles, ",")
			if _, ok := os.LookupEnv(envName(f.Name)); ok {
				src = "environment " + envName(f.Name)
			}
			err = usageErrorf("%s: invalid value %q for --%s: %v", src, val, f.Name, serr)
		}
	})
	return err
}

// envName is the environment variable for a flag.
func envName(flag string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// configString turns a config or environment value into flag syntax: lists
// become comma lists.
func configString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case []string:
		return strings.Join(x, ",")
	case []int:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// runE wraps a command's run so that every error it returns carries its
// exit code (see classify).
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return classify(f(cmd, args))
	}
}
