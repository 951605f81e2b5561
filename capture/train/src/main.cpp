// cdma-train (`cdma train`): real CPU training runs on Fashion-MNIST that write trace format v1.
// Exit codes: 0 ok, 1 bad input or failed run, 2 bad command line, 130 interrupted (trace kept).
#include "options.hpp"
#include "trainer.hpp"

#include <cdma/formats/output_file.hpp>
#include <cdma/formats/text.hpp>
#include <cdma/version.hpp>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // second Ctrl-C: stop now
}

int list(bool json) {
  auto nets = cdma::train::list_nets();
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& n : nets) {
      nlohmann::json layers = nlohmann::json::array();
      for (const auto& [name, op] : n.layers) layers.push_back({{"name", name}, {"op", op}});
      j.push_back({{"name", n.name},
                   {"summary", n.summary},
                   {"input_size", n.input_size},
                   {"batch", n.batch},
                   {"iterations", n.iterations},
                   {"lr", n.lr},
                   {"parameters", n.parameters},
                   {"layers", layers}});
    }
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("{:<11} {:>5} {:>6} {:>6} {:>6} {:>7} {:>9}  {}\n", "network", "input", "layers", "batch", "iters", "lr",
             "params", "description");
  for (const auto& n : nets)
    fmt::print("{:<11} {:>5} {:>6} {:>6} {:>6} {:>7} {:>9}  {}\n", n.name, n.input_size, n.layers.size(), n.batch,
               n.iterations, n.lr, n.parameters, n.summary);
  return 0;
}

// Through cdma's one output writer (formats/output_file.hpp): atomic for a regular file, in place for
// a device or FIFO, every write error reported (formats::Error, exit 1).
void write_metrics(const std::string& path, const cdma::train::RunResult& r) {
  cdma::formats::write_output_file(path, [&](std::ostream& out) {
    out << "iteration,loss,accuracy,captured,density,elapsed_s\n";
    for (const auto& s : r.curve)
      out << fmt::format("{},{:.9g},{:.6f},{},{},{:.3f}\n", s.iteration, s.loss, s.accuracy, s.captured ? 1 : 0,
                         s.density >= 0 ? fmt::format("{:.6f}", s.density) : std::string(), s.elapsed_s);
  });
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cdma::train;
  Options o;
  CLI::App app{fmt::format("cdma train {} — train a scaled-down cDMA-paper network on Fashion-MNIST with libtorch "
                           "(CPU) and record every layer's input activations into a trace",
                           cdma::kVersion),
               "cdma train"};
  add_options(app, o);
  app.footer(
      "Examples:\n"
      "  cdma train --net vgg -o vgg.h5                      # ~2 min, 5 captures spread over the run\n"
      "  cdma train --net resnet --epochs 1 --capture-every 100 --capture-batch 8 -o resnet.h5\n"
      "Exit codes: 0 ok, 1 bad input or failed run, 2 bad command line, 130 interrupted (trace closed).");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  std::vector<const char*> args(argv, argv + argc);
  std::string self = std::filesystem::path(argv[0]).filename().string();
  args[0] = self.c_str();
  o.command = command_line(argc, args.data());

  try {
    validate(o);
    if (o.list_nets) return list(o.json);

    std::signal(SIGINT, on_sigint);
    const bool tty = isatty(STDERR_FILENO) != 0;
    ProgressFn progress;
    double last_density = -1;
    if (tty) {
      progress = [&](const IterationStats& s) {
        if (s.density >= 0) last_density = s.density;
        if (!s.captured && s.iteration % 5 != 0 && s.iteration + 1 != s.total) return;
        fmt::print(stderr, "\r[cdma train] iter {:>6}/{}  loss {:.4f}  acc {:5.1f}%  density {}  {:.1f} it/s   ",
                   s.iteration + 1, s.total, s.loss, 100 * s.accuracy,
                   last_density >= 0 ? fmt::format("{:.3f}", last_density) : std::string("  -  "),
                   static_cast<double>(s.iteration + 1) / std::max(1e-9, s.elapsed_s));
        std::fflush(stderr);
      };
    }
    RunResult r = run_training(o, progress, &g_stop);
    if (tty) fmt::print(stderr, "\n");
    if (!o.metrics.empty()) write_metrics(o.metrics, r);

    if (o.json) {
      // Paths and names may hold any bytes; nlohmann::json throws on text that is not UTF-8
      // (type_error 316), so they enter as clean text (\xHH escapes).
      using cdma::formats::clean_text;
      nlohmann::json j = {{"net", clean_text(r.net)},
                          {"iterations", r.iterations},
                          {"planned_iterations", r.planned_iterations},
                          {"batch", r.batch},
                          {"lr", r.lr},
                          {"threads", r.threads},
                          {"input_size", r.input_size},
                          {"seed", o.seed},
                          {"train_images", r.train_images},
                          {"test_images", r.test_images},
                          {"test_accuracy", r.test_accuracy >= 0 ? nlohmann::json(r.test_accuracy) : nlohmann::json()},
                          {"final_loss", r.curve.empty() ? nlohmann::json() : nlohmann::json(r.curve.back().loss)},
                          {"train_seconds", r.train_seconds},
                          {"eval_seconds", r.eval_seconds},
                          {"trace", r.trace.empty() ? nlohmann::json() : nlohmann::json(clean_text(r.trace))},
                          {"trace_bytes", r.trace_bytes},
                          {"captured_tensors", r.captured_tensors},
                          {"captured_iterations", r.captured_iterations},
                          {"interrupted", r.interrupted}};
      fmt::print("{}\n", j.dump(2));
    } else {
      fmt::print("network        {} ({}x{} input, batch {}, lr {}, {} threads, seed {})\n", r.net, r.input_size,
                 r.input_size, r.batch, r.lr, r.threads, o.seed);
      fmt::print("iterations     {} of {} in {:.1f} s ({:.2f} it/s)\n", r.iterations, r.planned_iterations,
                 r.train_seconds, static_cast<double>(r.iterations) / std::max(1e-9, r.train_seconds));
      if (!r.curve.empty()) fmt::print("final loss     {:.4f}\n", r.curve.back().loss);
      if (r.test_accuracy >= 0)
        fmt::print("test accuracy  {:.2f}% on {} Fashion-MNIST test images\n", 100 * r.test_accuracy, r.test_images);
      else
        fmt::print("test accuracy  not measured (interrupted)\n");
      if (!r.trace.empty())
        fmt::print("trace          {} ({} tensors at {} iterations, {:.2f} MB)\n", r.trace, r.captured_tensors,
                   r.captured_iterations.size(), static_cast<double>(r.trace_bytes) / 1e6);
    }
    if (r.interrupted) {
      fmt::print(stderr, "cdma train: interrupted after {} iterations; the trace is closed and readable\n",
                 r.iterations);
      return 130;
    }
    return 0;
  } catch (const UsageError& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cdma train: {}\n", e.what());
    return 1;
  }
}
