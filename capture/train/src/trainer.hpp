// The training run behind cdma-train: loads Fashion-MNIST, trains a network on the CPU with
// libtorch, records every layer's input X at the scheduled iterations into a trace (format v1),
// with per-layer forward and backward CPU times in /timeline. This header does not include torch.
#pragma once

#include "options.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cdma::train {

struct IterationStats {
  std::int64_t iteration = 0;
  std::int64_t total = 0;  // iterations in the run
  double loss = 0;         // training loss of this batch
  double accuracy = 0;     // training accuracy of this batch (0..1)
  bool captured = false;
  double density = -1;   // nonzero fraction of everything captured this iteration; -1 if none
  double elapsed_s = 0;  // since training started
};

struct RunResult {
  std::string net;
  std::int64_t iterations = 0;  // run (fewer than planned when interrupted)
  std::int64_t planned_iterations = 0;
  int batch = 0;
  double lr = 0;
  int threads = 0;
  int input_size = 0;
  std::int64_t train_images = 0, test_images = 0;
  double test_accuracy = -1;  // -1 when not evaluated (interrupted)
  double train_seconds = 0, eval_seconds = 0;
  std::string trace;  // "" when nothing was captured
  std::int64_t captured_tensors = 0;
  std::int64_t trace_bytes = 0;
  std::vector<std::int64_t> captured_iterations;
  std::vector<IterationStats> curve;
  bool interrupted = false;
};

using ProgressFn = std::function<void(const IterationStats&)>;

// Runs one training run. `stop`, when set during the run, ends it after the current iteration
// (the trace is closed and readable; no test accuracy). Throws UsageError for bad options,
// TrainError / cdma::formats::TraceError for bad input or an unwritable output.
RunResult run_training(const Options& o, const ProgressFn& progress = {}, const std::atomic<bool>* stop = nullptr);

struct NetListing {
  std::string name, summary;
  int input_size = 0, batch = 0;
  std::int64_t iterations = 0;
  double lr = 0;
  std::int64_t parameters = 0;
  std::vector<std::pair<std::string, std::string>> layers;  // (name, op) in forward order
};
std::vector<NetListing> list_nets();

// "libtorch 1.13.0 (headers; package libtorch-dev 1.13.1+dfsg-4)": the headers' TORCH_VERSION, and the
// Debian package the build found (its release; the headers lag it).
std::string framework_version();

}  // namespace cdma::train
