#include "options.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>

namespace cdma::train {

namespace {
// A CLI11 check: the value is a finite number in [lo, hi] (hi_open: [lo, hi)), described as `range`.
// CLI::Range lets NaN through and prints the type's limits; a refused value is a usage error (exit 2)
// whose message starts with the option's name.
CLI::Validator within(double lo, double hi, const std::string& range, bool hi_open = false) {
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(s, v) || !std::isfinite(v) || v < lo || v > hi || (hi_open && v >= hi))
          return "must be " + range + ", got " + s;
        return "";
      },
      range);
}
constexpr double kMaxCount = 1e15;  // iterations, images, schedule steps: far beyond any run
}  // namespace

void add_options(CLI::App& app, Options& o) {
  app.add_option("-n,--net", o.net,
                 "network: alexnet, overfeat, nin, vgg, squeezenet, googlenet, resnet (see --list-nets)")
      ->capture_default_str();
  app.add_option("-b,--batch", o.batch, "training batch size, 1..65536 (default: the network's)")
      ->check(within(1, 65536, "in 1..65536"));
  auto* it = app.add_option("-i,--iterations", o.iterations, "training iterations, >= 1 (default: the network's)")
                 ->check(within(1, kMaxCount, ">= 1"));
  auto* ep = app.add_option("-e,--epochs", o.epochs, "train for this many epochs instead (may be fractional, > 0)")
                 ->check(within(1e-9, 1e6, "in (0, 1e6]"));
  it->excludes(ep);
  app.add_option("--lr", o.lr, "learning rate, > 0 (default: the network's)")->check(within(1e-12, 1e3, "in (0, 1e3]"));
  app.add_option("--optimizer", o.optimizer, "adam, or sgd (with --momentum)")->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum, [0, 1)")
      ->capture_default_str()
      ->check(within(0, 1, "in [0, 1)", true));
  app.add_option("--weight-decay", o.weight_decay, "L2 weight decay, [0, 1]")
      ->capture_default_str()
      ->check(within(0, 1, "in [0, 1]"));
  app.add_option("-s,--seed", o.seed, "random seed (weights, data order, dropout)")->capture_default_str();
  app.add_option("-j,-t,--jobs,--threads", o.threads,
                 "CPU threads for libtorch (0 = all cores; -t/--threads: old names). Results are reproducible for a "
                 "given seed and thread count; 1 is fastest on a busy machine")
      ->capture_default_str()
      ->check(within(0, 1024, "in 0..1024"));

  auto* g = app.add_option_group("capture", "when and what to record (the union of the rules given)");
  g->add_option("--capture-every", o.capture_every, "capture every N iterations (0, N, 2N, ...), N >= 1")
      ->check(within(1, kMaxCount, ">= 1"));
  g->add_option("--capture-at", o.capture_at, "capture at these iterations (comma-separated, 0-based)")
      ->delimiter(',')
      ->check(within(0, kMaxCount, ">= 0"));
  g->add_option("--capture-first", o.capture_first, "capture the first K iterations, K >= 1")
      ->check(within(1, kMaxCount, ">= 1"));
  g->add_option("--capture-last", o.capture_last, "capture the last K iterations, K >= 1")
      ->check(within(1, kMaxCount, ">= 1"));
  g->add_option("--capture-spread", o.capture_spread,
                "capture K >= 1 iterations spread evenly from the first to the last (default 5 when no rule is given)")
      ->check(within(1, kMaxCount, ">= 1"));
  g->add_flag("--no-capture", o.no_capture, "capture nothing (training and accuracy only)");
  g->add_option("--capture-batch", o.capture_batch,
                "record the activations of the first K images of the batch (0 = whole batch)")
      ->capture_default_str()
      ->check(within(0, 65536, "in 0..65536"));

  g->add_flag("--record-relu-inputs", o.record_relu_inputs,
              "also record the input of each (in-place) ReLU, the dense conv/FC output it overwrites, with "
              "offload = 0: for study, never counted as offloaded");
  app.add_option("-o,--output", o.output, "trace file to write (default: <net>-fmnist.h5)");
  app.add_flag("-f,--force", o.force, "replace the output file if it exists");
  app.add_option("--deflate", o.deflate, "HDF5 deflate level for tensors, 0-9 (0 = contiguous, uncompressed)")
      ->capture_default_str()
      ->check(within(0, 9, "in 0..9"));
  app.add_option("--data-dir", o.data_dir, "Fashion-MNIST IDX files (*-images-idx3-ubyte.gz, ...)")
      ->capture_default_str();
  app.add_option("--train-limit", o.train_limit, "use only the first N training images (0 = all 60000)")
      ->check(within(0, kMaxCount, ">= 0"));
  app.add_option("--test-limit", o.test_limit, "evaluate on the first N test images (0 = all 10000)")
      ->check(within(0, kMaxCount, ">= 0"));
  app.add_option("--metrics", o.metrics, "write per-iteration loss/accuracy/density as CSV to this file");
  app.add_flag("--json", o.json, "print the run summary as JSON on stdout instead of text");
  app.add_flag("--list-nets", o.list_nets, "list the networks with their layers and defaults, then exit");
}

void validate(const Options& o) {
  auto bad = [](const std::string& what) { throw UsageError("cdma train: " + what); };
  if (o.batch < 0) bad("--batch must be positive, got " + std::to_string(o.batch));
  if (o.iterations < 0) bad("--iterations must be positive, got " + std::to_string(o.iterations));
  if (o.epochs < 0) bad("--epochs must be positive");
  if (o.lr < 0) bad("--lr must be positive");
  if (o.optimizer != "sgd" && o.optimizer != "adam")
    bad("--optimizer must be 'sgd' or 'adam', got '" + o.optimizer + "'");
  if (o.momentum < 0 || o.momentum >= 1) bad("--momentum must be in [0, 1)");
  if (o.weight_decay < 0) bad("--weight-decay must not be negative");
  if (o.threads < 0 || o.threads > 1024) bad("--jobs must be in 0..1024, got " + std::to_string(o.threads));
  if (o.capture_every < 0) bad("--capture-every must be positive, got " + std::to_string(o.capture_every));
  if (o.capture_first < 0) bad("--capture-first must not be negative");
  if (o.capture_last < 0) bad("--capture-last must not be negative");
  if (o.capture_spread < 0) bad("--capture-spread must not be negative");
  for (auto i : o.capture_at)
    if (i < 0) bad("--capture-at iterations must be >= 0, got " + std::to_string(i));
  if (o.capture_batch < 0) bad("--capture-batch must not be negative");
  if (o.no_capture &&
      (o.capture_every || !o.capture_at.empty() || o.capture_first || o.capture_last || o.capture_spread))
    bad("--no-capture cannot be combined with a --capture-* rule");
  if (o.deflate < 0 || o.deflate > 9) bad("--deflate must be in 0..9, got " + std::to_string(o.deflate));
  if (o.train_limit < 0 || o.test_limit < 0) bad("--train-limit and --test-limit must not be negative");
}

std::vector<std::int64_t> capture_schedule(const Options& o, std::int64_t total) {
  std::vector<std::int64_t> s;
  if (o.no_capture || total <= 0) return s;
  bool any = o.capture_every || !o.capture_at.empty() || o.capture_first || o.capture_last || o.capture_spread;
  std::int64_t spread = any ? o.capture_spread : 5;
  if (o.capture_every > 0)
    for (std::int64_t i = 0; i < total; i += o.capture_every) s.push_back(i);
  for (auto i : o.capture_at) {
    if (i >= total)
      throw UsageError("cdma train: --capture-at " + std::to_string(i) + " is past the last iteration (" +
                       std::to_string(total - 1) + ")");
    s.push_back(i);
  }
  for (std::int64_t i = 0; i < std::min(o.capture_first, total); ++i) s.push_back(i);
  for (std::int64_t i = std::max<std::int64_t>(0, total - o.capture_last); i < total; ++i) s.push_back(i);
  if (spread == 1) {
    s.push_back(0);
  } else if (spread > 1) {
    // K points from 0 to total-1, rounded to the nearest iteration.
    for (std::int64_t k = 0; k < spread; ++k)
      s.push_back(static_cast<std::int64_t>((k * (total - 1) * 2 + (spread - 1)) / (2 * (spread - 1))));
  }
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

std::string command_line(int argc, const char* const* argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) ||
             std::string_view("-_./=:,+@%").find(c) != std::string_view::npos;
    });
    if (i) out += ' ';
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

}  // namespace cdma::train
