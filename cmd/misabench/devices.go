package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/misabench/misabench/kernels"
	"github.com/misabench/misabench/report"
)

// DevicesOptions are the options of `misabench devices`.
type DevicesOptions struct {
	// Format of stdout: table or json.
	Format         string
	Stdout, Stderr io.Writer

	// list lists the devices (nil: listDevices, which needs the cuda
	// build); tests replace it.
	list func() ([]kernels.DeviceInfo, error)
}

func newDevicesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "devices",
		Short: "List the CUDA devices",
		Long: `devices lists the CUDA devices: name, compute capability, the NVRTC target the
kernels are compiled for, memory, SMs, L2, and the driver's and NVRTC's CUDA
versions (or why NVRTC cannot be loaded). --format json gives the same as a
list of objects. Needs a binary built with CUDA (make build-cuda).`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.devicesF(cmd.Context(), &DevicesOptions{Format: a.global.Format, Stdout: a.out, Stderr: a.errOut})
		}),
	}
}

// runDevices lists the devices on stdout.
func runDevices(_ context.Context, o *DevicesOptions) error {
	format, err := parseFormat(o.Format, "table", "json")
	if err != nil {
		return err
	}
	list := o.list
	if list == nil {
		if err := gpuBuilt(); err != nil {
			return err
		}
		list = listDevices
	}
	devs, err := list()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	switch {
	case format == "json":
		if devs == nil {
			devs = []kernels.DeviceInfo{}
		}
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(devs); err != nil {
			return err
		}
	case len(devs) == 0:
		fmt.Fprintln(&buf, "no CUDA devices")
	default:
		if err := report.DevicesTable(&buf, devs); err != nil {
			return err
		}
	}
	_, err = writerOr(o.Stdout).Write(buf.Bytes())
	return err
}
