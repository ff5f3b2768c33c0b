package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/misabench/misabench/kernels"
)

// resolveKernel runs a command line through the real cobra tree with the
// kernel run function replaced, and returns the options it resolved to.
func resolveKernel(t *testing.T, args ...string) (*KernelOptions, int, string) {
	t.Helper()
	var got *KernelOptions
	var stdout, stderr bytes.Buffer
	a := newApp(&stdout, &stderr)
	a.kernelF = func(_ context.Context, o *KernelOptions) error { got = o; return nil }
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return got, exitCode(err), msg
}

func TestKernelFlags(t *testing.T) {
	o, code, msg := resolveKernel(t, "kernel", "--compare-dsa")
	if code != 0 || o == nil {
		t.Fatalf("code %d (%s)", code, msg)
	}
	co, err := o.compareOptions()
	if err != nil {
		t.Fatal(err)
	}
	want := kernels.CompareOptions{
		Models: []string{"deepseek-v3.2", "glm-5"}, Contexts: []int{8192, 16384, 32768, 65536, 131072},
		Modes: []string{"prefill", "decode"}, PrefillRows: 1024, DecodeBatch: 64, TopK: 2048,
		Heads: 8, Block: 1024, Stage1: 8192, HisaBlock: 128, HisaBlocks: 64, Warmup: 3, Reps: 20, Seed: 1,
	}
	if !equalCompareOptions(co, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", co, want)
	}
	if o.Format != "table" || o.Out != "" {
		t.Errorf("format %q out %q", o.Format, o.Out)
	}

	o, code, msg = resolveKernel(t, "kernel", "--compare-dsa", "--models", "GLM-5", "--ctx", "8k,8192,128K, 16384 ,1m",
		"--modes", "decode", "--rows", "512", "--batch", "8", "--topk", "1024", "--heads", "4", "--block", "512",
		"--stage1", "4096", "--hisa-block", "64", "--hisa-blocks", "32", "--warmup", "0", "--reps", "5", "--seed", "7",
		"--logits-kernel", "8", "--fused=false", "--out", "x", "--format", "csv", "--device", "cpu")
	if code != 0 {
		t.Fatalf("code %d (%s)", code, msg)
	}
	co, err = o.compareOptions()
	if err != nil {
		t.Fatal(err)
	}
	want = kernels.CompareOptions{
		Models: []string{"glm-5"}, Contexts: []int{8192, 131072, 16384, 1 << 20}, Modes: []string{"decode"},
		PrefillRows: 512, DecodeBatch: 8, TopK: 1024, Heads: 4, Block: 512, Stage1: 4096, HisaBlock: 64,
		HisaBlocks: 32, Warmup: 0, Reps: 5, Seed: 7, LogitsKernel: 8, NoFused: true,
	}
	if !equalCompareOptions(co, want) || o.Out != "x" || o.Format != "csv" {
		t.Errorf("flags:\n got %+v (out %q, format %q)\nwant %+v", co, o.Out, o.Format, want)
	}

	// The environment and config files set the kernel flags too.
	dir := t.TempDir()
	cfg := writeFile(t, dir, "k.yaml", "ctx: [32k, 64k]\nreps: 7\nmodes: prefill\n")
	t.Setenv("MISABENCH_MODELS", "deepseek-v3.2")
	o, code, msg = resolveKernel(t, "kernel", "--compare-dsa", "--config", cfg, "--reps", "9")
	if code != 0 {
		t.Fatalf("config: code %d (%s)", code, msg)
	}
	co, err = o.compareOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(co.Contexts, []int{32768, 65536}) || co.Reps != 9 || !slices.Equal(co.Models, []string{"deepseek-v3.2"}) ||
		!slices.Equal(co.Modes, []string{"prefill"}) {
		t.Errorf("config and env: %+v", co)
	}
}

func equalCompareOptions(a, b kernels.CompareOptions) bool {
	return slices.Equal(a.Models, b.Models) && slices.Equal(a.Contexts, b.Contexts) && slices.Equal(a.Modes, b.Modes) &&
		a.PrefillRows == b.PrefillRows && a.DecodeBatch == b.DecodeBatch && a.TopK == b.TopK &&
		a.Heads == b.Heads && a.Block == b.Block && a.Stage1 == b.Stage1 && a.HisaBlock == b.HisaBlock &&
		a.HisaBlocks == b.HisaBlocks && a.Warmup == b.Warmup && a.Reps == b.Reps && a.Seed == b.Seed &&
		a.LogitsKernel == b.LogitsKernel && a.Dump == b.Dump && a.NoFused == b.NoFused
}

func TestParseCtx(t *testing.T) {
	for s, want := range map[string]int{
		"8k": 8192, "8K": 8192, "8192": 8192, " 128K ": 131072, "128k": 131072, "1m": 1 << 20, "1M": 1 << 20,
		"100": 100, "1": 1, "1048576k": 1 << 30,
	} {
		got, err := parseCtx(s)
		if err != nil || got != want {
			t.Errorf("parseCtx(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "k", "K", "8q", "-8k", "+8k", "0", "0k", "1.5k", "8kk", "8 k", "1g", "0x10", "1048577k", "99999999999999999999"} {
		n, err := parseCtx(s)
		if err == nil {
			t.Errorf("parseCtx(%q) = %d, want an error", s, n)
		} else if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--ctx") {
			t.Errorf("parseCtx(%q): %v (code %d), want a --ctx usage error", s, err, exitCode(err))
		}
	}
	if _, err := parseContexts(nil); err == nil {
		t.Error("empty --ctx: no error")
	}
}

// TestKernelUsageErrors: bad options exit 2 with one line on stderr, before
// any GPU is looked for, in every build.
func TestKernelUsageErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	k := []string{"kernel", "--compare-dsa"}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no mode":          {[]string{"kernel"}, "--compare-dsa"},
		"bad ctx":          {args(k, "--ctx", "8k,lots"), `--ctx "lots"`},
		"ctx zero":         {args(k, "--ctx", "0"), "out of range"},
		"ctx fraction":     {args(k, "--ctx", "1.5k"), "--ctx"},
		"empty ctx":        {args(k, "--ctx", ""), "--ctx"},
		"unknown model":    {args(k, "--models", "llama"), "llama"},
		"unknown mode":     {args(k, "--modes", "train"), "train"},
		"heads over glm-5": {args(k, "--heads", "33"), "out of range [1, 32] for glm-5"},
		"heads zero":       {args(k, "--heads", "0"), "--heads"},
		"rows over ctx":    {args(k, "--ctx", "1k,8k", "--rows", "2048"), "--rows 2048"},
		"batch over ctx":   {args(k, "--ctx", "32", "--modes", "decode", "--batch", "64"), "--batch 64"},
		"reps zero":        {args(k, "--reps", "0"), "--reps"},
		"logits kernel":    {args(k, "--logits-kernel", "11"), "--logits-kernel 11"},
		"negative warmup":  {args(k, "--warmup", "-1"), "--warmup"},
		"bad format":       {args(k, "--format", "xml"), "xml"},
		"bad int":          {args(k, "--rows", "many"), "many"},
		"extra arg":        {args(k, "now"), "now"},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := cli(t, args(tc.args, "--out", out)...)
			if code != exitUsage {
				t.Fatalf("code %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.HasPrefix(stderr, "misabench: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr is not one \"misabench: <error>\" line: %q", stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
			assertNoDir(t, out)
		})
	}
}

// fakeReport is a small CompareReport: one model, both modes, two contexts,
// DSA and MISA.
func fakeReport(o kernels.CompareOptions) *kernels.CompareReport {
	r := &kernels.CompareReport{
		Device:  kernels.DeviceInfo{Name: "NVIDIA H100 80GB HBM3", Major: 9, Arch: "sm_90a", MemoryBytes: 85 << 30, SMs: 132},
		CopyGBs: 2900,
		Options: o,
	}
	r.Options.Progress = nil
	for _, mode := range o.Modes {
		for _, n := range o.Contexts {
			dsa := float64(n) / 8192
			for _, m := range []struct {
				name string
				s    float64
			}{{"dsa", 1}, {"misa(h=8,B=1024)", 1.5 + float64(n)/65536}} {
				ms := dsa / m.s
				r.Cases = append(r.Cases, kernels.CaseResult{
					Model: o.Models[0], H: 64, Mode: mode, Ctx: n, Rows: 64, Method: m.name,
					MedianMs: ms, MinMs: ms * 0.9, MaxMs: ms * 1.1,
					Stages:       []kernels.Stage{{Name: "logits", Ms: ms * 0.7}, {Name: "topk", Ms: ms * 0.3}},
					LogitsTFLOPs: 300, GBs: 1000, Recall: 1 / m.s, Speedup: m.s,
				})
			}
		}
	}
	return r
}

// TestRunKernel runs the command with a fake comparison: options passed
// through, the progress bar, stdout in every format, and the files.
func TestRunKernel(t *testing.T) {
	dir := t.TempDir()
	var seen kernels.CompareOptions
	fake := func(_ context.Context, o kernels.CompareOptions) (*kernels.CompareReport, error) {
		seen = o
		total := len(o.Models) * len(o.Modes) * len(o.Contexts)
		for i := 1; i <= total; i++ {
			if o.Progress != nil {
				o.Progress(i, total)
			}
		}
		return fakeReport(o), nil
	}
	newOpts := func(format, out string) (*KernelOptions, *bytes.Buffer, *bytes.Buffer) {
		o := defaultKernelOptions()
		var stdout, stderr bytes.Buffer
		o.CompareDSA, o.Models, o.Ctx, o.Modes = true, []string{"deepseek-v3.2"}, []string{"8k", "32K"}, []string{"prefill", "decode"}
		o.Format, o.Out, o.Stdout, o.Stderr, o.compare = format, out, &stdout, &stderr, fake
		return &o, &stdout, &stderr
	}

	out := filepath.Join(dir, "table")
	o, stdout, stderr := newOpts("table", out)
	o.Progress = true // as if stderr were a terminal
	if err := runKernel(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen.Contexts, []int{8192, 32768}) || seen.PrefillRows != 1024 || seen.Progress == nil {
		t.Errorf("comparison options: %+v", seen)
	}
	for _, want := range []string{"NVIDIA H100 80GB HBM3 (132 SMs, 85 GiB, sm_90a)", "2900 GB/s", "misa(h=8,B=1024)", "32K", "decode", "1.62×"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "cases") || !strings.Contains(stderr.String(), "wrote "+out) {
		t.Errorf("stderr: no progress bar or no wrote line: %q", stderr.String())
	}
	for _, f := range []string{"kernel.json", "kernel.csv", "speedup.png", "speedup.svg"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep kernels.CompareReport
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Cases) != 8 {
		t.Errorf("kernel.json: %v, %d cases", err, len(rep.Cases))
	}

	// JSON on stdout is the report; no bar without a terminal.
	o, stdout, stderr = newOpts("json", filepath.Join(dir, "json"))
	if err := runKernel(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	rep = kernels.CompareReport{}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || len(rep.Cases) != 8 || rep.CopyGBs != 2900 {
		t.Errorf("json stdout: %v, %+v", err, rep)
	}
	if seen.Progress != nil || strings.Contains(stderr.String(), "cases") {
		t.Errorf("progress without a terminal: %q", stderr.String())
	}

	// CSV: a header and one record per case.
	o, stdout, _ = newOpts("csv", filepath.Join(dir, "csv"))
	if err := runKernel(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(stdout).ReadAll()
	if err != nil || len(recs) != 9 {
		t.Errorf("csv stdout: %v, %d records", err, len(recs))
	}

	// The default directory is results/runs/kernel-<UTC time>.
	now := time.Date(2026, 3, 1, 12, 30, 45, 0, time.FixedZone("X", 3600))
	if got, want := kernelOutDir(now), filepath.Join("results", "runs", "kernel-20260301-113045"); got != want {
		t.Errorf("kernelOutDir = %q, want %q", got, want)
	}

	// A failed comparison writes nothing; a usage error keeps its code, any
	// other error is 1.
	failed := filepath.Join(dir, "failed")
	for _, tc := range []struct {
		err  error
		code int
	}{
		{usageErrorf("kernel: GPU 0: no device"), exitUsage},
		{errors.New("kernels: deepseek-v3.2 prefill 8192 keys: launch failed"), exitFail},
	} {
		o, stdout, _ = newOpts("table", failed)
		o.compare = func(context.Context, kernels.CompareOptions) (*kernels.CompareReport, error) { return nil, tc.err }
		err := classify(runKernel(context.Background(), o))
		if exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.err.Error()) {
			t.Errorf("compare error %v: got %v (code %d), want code %d", tc.err, err, exitCode(err), tc.code)
		}
		if stdout.Len() != 0 {
			t.Errorf("stdout after a failure: %q", stdout.String())
		}
		assertNoDir(t, failed)
	}
}

func TestRunDevices(t *testing.T) {
	devs := []kernels.DeviceInfo{
		{Index: 0, Name: "NVIDIA H200", Major: 9, Minor: 0, Arch: "sm_90a", MemoryBytes: 150_000_000_000, SMs: 132, L2Bytes: 60 << 20, Driver: "13.0", NVRTC: "13.0"},
		{Index: 1, Name: "NVIDIA H200", Major: 9, Minor: 0, Arch: "sm_90a", MemoryBytes: 150_000_000_000, SMs: 132, L2Bytes: 60 << 20, Driver: "13.0", NVRTCError: "libnvrtc.so: cannot open shared object file"},
	}
	run := func(format string, list []kernels.DeviceInfo) (string, error) {
		var stdout bytes.Buffer
		o := &DevicesOptions{Format: format, Stdout: &stdout, list: func() ([]kernels.DeviceInfo, error) { return list, nil }}
		err := runDevices(context.Background(), o)
		return stdout.String(), err
	}
	out, err := run("table", devs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name", "cc", "arch", "memory", "SMs", "L2", "driver", "NVRTC",
		"NVIDIA H200", "9.0", "sm_90a", "139.7 GiB", "132", "60 MiB", "13.0", "not loaded: libnvrtc.so"} {
		if !strings.Contains(out, want) {
			t.Errorf("devices table lacks %q:\n%s", want, out)
		}
	}
	out, err = run("json", devs)
	if err != nil {
		t.Fatal(err)
	}
	var back []kernels.DeviceInfo
	if err := json.Unmarshal([]byte(out), &back); err != nil || !slices.Equal(back, devs) {
		t.Errorf("devices json: %v\n%s", err, out)
	}
	if out, _ := run("json", nil); strings.TrimSpace(out) != "[]" {
		t.Errorf("no devices, json: %q", out)
	}
	if out, _ := run("table", nil); !strings.Contains(out, "no CUDA devices") {
		t.Errorf("no devices, table: %q", out)
	}
	if _, err := run("csv", devs); exitCode(err) != exitUsage {
		t.Errorf("--format csv: %v, want a usage error", err)
	}
}
