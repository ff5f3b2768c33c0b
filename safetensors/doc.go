// Package safetensors reads safetensors files: memory-mapped, strictly
// validated, decoded one tensor (or a row range of one) at a time.
//
// The format is simple: an 8-byte little-endian header length n, n bytes of
// JSON (tensor name → dtype, shape, data_offsets, plus an optional
// "__metadata__" object of strings), then the data. Open maps the file and
// checks the header before a single number is used: the length is sane, the
// JSON is one object with no duplicate names, every dtype is known, every
// tensor's byte range lies inside the data section, holds exactly
// product(shape) × dtype size bytes and overlaps no other tensor. After
// that, slicing the data by a tensor's offsets can never go out of range.
// Errors name the file, the tensor and the rule (*Error), never panic.
//
// Decoding covers the float dtypes a DSA model or trace uses — BF16, F16,
// F32 and F8_E4M3 (e4m3fn) — to []float32, with NaN/Inf detection folded
// into the decode loops, and I64/I32 to []int64; the codec functions
// (Decode, Encode, QuantizeE4M3, ...) are exported for formats built on top:
// package trace (misabench traces) and package checkpoint (Hugging Face
// checkpoints) both read through this package.
//
// Why our own reader. We evaluated github.com/nlpodyssey/safetensors against
// this one (trace's BenchmarkOpen: open a 441 MiB trace of 34 tensors and
// look one up; 2-core AMD EPYC VM, warm page cache) and kept our own:
//
//	our mmap reader              0.18 ms     76 KB allocated
//	nlpodyssey + os.ReadFile     57-72 ms   463 MB allocated (the whole file)
//	nlpodyssey over our mmap     0.12 ms     43 KB allocated
//
// The reasons:
//
//   - nlpodyssey's Deserialize takes the whole file as one []byte; its
//     intended use, os.ReadFile, copies every byte onto the heap before the
//     first tensor is looked at. That is 300× slower from a warm cache (and
//     reads gigabytes from disk from a cold one) and needs the file's size in
//     RAM per open file — hopeless for a 700 GB checkpoint of which we want a
//     few megabytes. Opening must touch only the header, decoding only the
//     tensor it decodes: that is what mmap gives.
//   - Fed our mmap'd slice instead, its header parse is a little faster than
//     ours (one reflective json.Unmarshal, no duplicate-name check), but it
//     still cannot serve: it has no F8_E4M3 dtype, so FP8 files fail to
//     open; it refuses gaps between tensors, which we tolerate; and its
//     errors do not say which tensor broke which rule, while ours must.
//   - Safety on multi-gigabyte files: offsets are checked against the
//     mapping with overflow-checked arithmetic before any slice is taken, and
//     a file truncated under the mapping (SIGBUS) becomes an error through
//     debug.SetPanicOnFault (CatchFault), never a crash. The parser is small
//     and fuzzed (FuzzHeader here, trace's FuzzParseHeader on top).
//
// The reader is strict where a wrong number could result (bounds, overlap,
// byte length = elements × dtype size, duplicate names) and lenient where
// writers differ harmlessly: Python's safetensors pads the JSON with
// spaces, orders entries freely and may put "__metadata__" anywhere; gaps
// between tensors and trailing bytes are tolerated. On a file system without
// mmap (some FUSE mounts) the file is read into memory instead.
package safetensors
