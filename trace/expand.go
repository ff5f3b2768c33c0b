package trace

import (
	"os"
	"path/filepath"
	"strings"
)

// traceExt is the extension that marks a trace inside a data-set directory.
const traceExt = ".safetensors"

// Expand turns command-line trace arguments into trace files: a file is
// taken as is (whatever its name: the user named it), a directory gives its
// *.safetensors files, sorted, skipping hidden ones and not descending into
// subdirectories. A missing path, or a directory without traces, is a
// *FormatError: silently evaluating nothing would look like success.
func Expand(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, pathError(p, err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return nil, pathError(p, err)
		}
		n := len(out)
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, traceExt) || strings.HasPrefix(name, ".") {
				continue
			}
			full := filepath.Join(p, name)
			// Follow symlinks: a data set of links to traces is common.
			if st, err := os.Stat(full); err != nil || st.IsDir() {
				continue
			}
			out = append(out, full)
		}
		if len(out) == n {
			return nil, newFormatError(p, "", "directory has no *%s traces", traceExt)
		}
	}
	return out, nil
}
