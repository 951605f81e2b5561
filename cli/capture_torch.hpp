// `cdma capture --torch -- CMD`: runs an unmodified Python training command with cdma.torch armed in
// each of its Python processes (a bootstrap sitecustomize put first on PYTHONPATH; rules in
// docs/TORCH_CAPTURE.md), then reports the traces they wrote. The capture itself is the Python
// package's (python/cdma/torch/); this is its launcher (cmd_capture_torch.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cdma::cli {

struct TorchLaunchOptions {
  std::vector<std::string> command;
  std::string output;        // trace path (default capture-<date>-<time>.h5); others <stem>.<pid>.h5
  std::string mode;          // full | insitu (default full)
  std::string budget;        // byte size (default 2G)
  std::string iterations;    // "0,10,20": the iterations to keep, instead of every/first
  std::string model;         // root attribute `model`
  std::string python_dir;    // the folder holding the cdma package (default <cdma dir>/../python)
  std::string json_path;     // --summary-json
  std::int64_t every = 0;    // 0: not given
  std::int64_t first = -1;   // -1: not given
  std::int64_t samples = 0;  // 0: whole batches
  int deflate = 0;
  bool verbose = false;
  bool force = false;  // replace an existing trace at `output` once a new one exists (else refused before the run)
};

// Runs the command and reports its traces on stderr. Returns the exit status of `cdma capture`: 2
// for a bad option (before anything runs), else the command's status, or 1 when it exited 0 but
// no process wrote a trace.
int run_torch_capture(const TorchLaunchOptions& o);

}  // namespace cdma::cli
