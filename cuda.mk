# cuda.mk — GPU builds (DESIGN.md §5), meant to be included by the Makefile.
#
#   make cuda-sdk     cuda.h and the libcuda.so link stub into .cuda-sdk/ (ignored),
#                     from Debian's nvidia-cuda-dev (non-free), for machines
#                     without a CUDA toolkit; nothing is installed system-wide
#   make build-cuda   bin/misabench-cuda, built with -tags cuda
#   make kernels-test bin/kernels.test, the GPU test binary (go test -c -tags cuda ./kernels)
#   make gpu-bins     both, to carry to a GPU host (which needs the driver and
#                     NVRTC there, no Go): ./bin/kernels.test -test.v
#   make vet-cuda     go vet with the cuda tag
#
# Headers and the link stub come from $(CUDA_HOME) when it has cuda.h, else
# from .cuda-sdk (fetched on first use). The binaries need libcuda.so.1 (the
# driver) at start-up and load NVRTC with dlopen when a GPU is opened.

GO             ?= go
CUDA_HOME      ?= /usr/local/cuda
CUDA_SDK       ?= .cuda-sdk
# The archive is the one this machine's apt already uses (its first Debian
# source), with the non-free component added in a private list.
CUDA_DEB_MIRROR ?= $(shell { awk '/^URIs:/{print $$2; exit}' /etc/apt/sources.list.d/*.sources; awk '$$1=="deb"{print ($$2 ~ /^\[/ ? $$3 : $$2); exit}' /etc/apt/sources.list; } 2>/dev/null | head -1)
CUDA_DEB_SUITE ?= bookworm

ifneq ($(wildcard $(CUDA_HOME)/include/cuda.h),)
CUDA_CFLAGS  := -I$(CUDA_HOME)/include
CUDA_LDFLAGS := -L$(CUDA_HOME)/lib64/stubs -L$(CUDA_HOME)/lib64
CUDA_DEPS    :=
else
CUDA_CFLAGS  := -I$(abspath $(CUDA_SDK))/include
CUDA_LDFLAGS := -L$(abspath $(CUDA_SDK))/lib
CUDA_DEPS    := $(CUDA_SDK)/.ok
endif
CUDA_ENV := CGO_ENABLED=1 CGO_CFLAGS="$(CUDA_CFLAGS)" CGO_LDFLAGS="$(CUDA_LDFLAGS)"

.PHONY: cuda-sdk build-cuda kernels-test gpu-bins vet-cuda

cuda-sdk: $(CUDA_SDK)/.ok

# A private apt configuration (sources, lists, cache under .cuda-sdk/apt)
# downloads the one package; only the two files are kept (about 0.9 MB).
$(CUDA_SDK)/.ok:
	@set -e; a="$(abspath $(CUDA_SDK))/apt"; rm -rf "$$a"; \
	mkdir -p "$$a/lists/partial" "$$a/cache/archives/partial" "$$a/x" "$(CUDA_SDK)/include" "$(CUDA_SDK)/lib"; \
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(CUDA_DEB_MIRROR) $(CUDA_DEB_SUITE) non-free" >"$$a/sources.list"; \
	o="-q -o Dir::Etc::SourceList=$$a/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$$a/lists -o Dir::Cache=$$a/cache -o Debug::NoLocking=1"; \
	echo "cuda-sdk: apt-get update ($(CUDA_DEB_SUITE) non-free, private lists)"; \
	apt-get $$o update >/dev/null; \
	echo "cuda-sdk: apt-get download nvidia-cuda-dev (about 0.8 GB)"; \
	(cd "$$a/cache/archives" && apt-get $$o download nvidia-cuda-dev 2>&1 | grep -v 'unsandboxed' || true); \
	deb=$$(ls "$$a"/cache/archives/nvidia-cuda-dev_*.deb); \
	echo "cuda-sdk: extracting usr/include/cuda.h and stubs/libcuda.so"; \
	dpkg-deb --fsys-tarfile "$$deb" | tar -x -C "$$a/x" ./usr/include/cuda.h ./usr/lib/x86_64-linux-gnu/stubs/libcuda.so; \
	mv "$$a/x/usr/include/cuda.h" "$(CUDA_SDK)/include/cuda.h"; \
	mv "$$a/x/usr/lib/x86_64-linux-gnu/stubs/libcuda.so" "$(CUDA_SDK)/lib/libcuda.so"; \
	rm -rf "$$a"; \
	grep -q cuDriverGetVersion "$(CUDA_SDK)/include/cuda.h"; \
	touch $@; echo "cuda-sdk: ready in $(CUDA_SDK)/"

build-cuda: $(CUDA_DEPS)
	$(CUDA_ENV) $(GO) build -tags cuda -ldflags '$(LDFLAGS)' -o bin/misabench-cuda ./cmd/misabench

kernels-test: $(CUDA_DEPS)
	$(CUDA_ENV) $(GO) test -c -tags cuda -o bin/kernels.test ./kernels

gpu-bins: kernels-test build-cuda

vet-cuda: $(CUDA_DEPS)
	$(CUDA_ENV) $(GO) vet -tags cuda ./kernels
