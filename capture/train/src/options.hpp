// Command-line options of cdma-train, their validation, and the capture schedule.
// No libtorch here, so that option handling is cheap to build and test.
#pragma once

#include <cdma/formats/error.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace cdma::train {

// A bad command line (unknown network, bad schedule, out-of-range value). cdma-train exits 2.
class UsageError : public cdma::formats::Error {
 public:
  using Error::Error;
};

// Bad input or a failed run (missing dataset, unwritable output). cdma-train exits 1.
class TrainError : public cdma::formats::Error {
 public:
  using Error::Error;
};

inline constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";

struct Options {
  std::string net = "vgg";
  int batch = 0;                   // 0: the network's default
  std::int64_t iterations = 0;     // 0: from epochs, else the network's default
  double epochs = 0;               // > 0: iterations = epochs * (train images / batch)
  double lr = 0;                   // 0: the network's default
  std::string optimizer = "adam";  // adam or sgd (with momentum)
  double momentum = 0.9;
  double weight_decay = 5e-4;
  std::uint64_t seed = 1;
  int threads = 1;  // libtorch intra-op threads (0: all hardware threads)

  // Capture schedule: the union of every rule given; none given = 5 captures spread over the run.
  std::int64_t capture_every = 0;
  std::vector<std::int64_t> capture_at;
  std::int64_t capture_first = 0;
  std::int64_t capture_last = 0;
  std::int64_t capture_spread = 0;
  bool no_capture = false;
  int capture_batch = 4;  // images of the batch whose activations are recorded (0: all)
  // ReLU runs in place (as cuDNN frameworks run it), so its input, the dense conv/FC output, is
  // overwritten and never offloaded. With this set it is still recorded, with offload = 0.
  bool record_relu_inputs = false;

  std::string output;  // trace path; "" = <net>-fmnist.h5
  bool force = false;  // overwrite an existing output
  int deflate = 0;     // HDF5 deflate level of captured tensors (0 = contiguous: no compression on the training thread)
  std::string data_dir = kDefaultDataDir;
  std::int64_t train_limit = 0;  // use only the first N training images (0 = all)
  std::int64_t test_limit = 0;   // evaluate on the first N test images (0 = all)
  std::string metrics;           // per-iteration CSV
  bool json = false;             // summary as JSON on stdout
  bool list_nets = false;

  std::string command;  // the exact command line, recorded in the trace
};

// Registers every option on `app` (CLI11), writing into `o`.
void add_options(CLI::App& app, Options& o);

// Checks values that CLI11 cannot (ranges, combinations). Throws UsageError.
void validate(const Options& o);

// Iterations at which activations are captured, sorted and unique, all in [0, total).
// Throws UsageError when a rule is invalid (e.g. --capture-at past the last iteration).
std::vector<std::int64_t> capture_schedule(const Options& o, std::int64_t total);

// Joins argv into one shell-quoted command line.
std::string command_line(int argc, const char* const* argv);

}  // namespace cdma::train
