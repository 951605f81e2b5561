// `cdma synth -o FILE`: writes a synthetic trace (source "synthetic") with the deterministic
// activation generator of cdma::formats, for tests and benchmarks of the analyzer.
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/formats/output_file.hpp>
#include <cdma/formats/synth.hpp>
#include <cdma/formats/trace.hpp>
#include <cdma/version.hpp>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <atomic>
#include <cmath>
#include <csignal>
#include <filesystem>

namespace cdma::cli {
namespace {

std::atomic<bool> g_synth_stop{false};
extern "C" void on_synth_sigint(int) {
  g_synth_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

template <class T, class F>
std::vector<T> parse_list(const std::string& s, F conv, const char* what) {
  std::vector<T> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      std::size_t used = 0;
      out.push_back(conv(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw formats::Error(fmt::format("{} '{}': '{}' is not a number", what, s, item));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

int run_synth(int argc, char** argv) {
  CLI::App app{
      "Write a synthetic trace (source \"synthetic\"): LAYERS x ITERATIONS tensors of SHAPE from the "
      "deterministic activation generator (density, zero clustering, dtype, seed). With --bytes, the "
      "iteration count is chosen so that the trace holds at least that many bytes.",
      "cdma synth"};
  std::string out, shape = "8,64,32,32", density = "0.4", clustering = "mixed", dtype = "float32", bytes;
  std::uint64_t seed = 1;
  int layers = 4;
  std::int64_t iterations = 2;
  double dead_share = 0.3, mean_run = 8.0;
  bool overwrite = false;
  int deflate = 0;
  app.add_option("-o,--output", out, "trace file to write")->required();
  app.add_option("--bytes", bytes, "total tensor bytes wanted (e.g. 1G); sets the iteration count");
  app.add_option("--shape", shape, "tensor shape N,C,H,W (NCHW) or N,F (NC)")->capture_default_str();
  app.add_option("--density", density, "fraction of nonzeros: one value, or one per layer (comma-separated)")
      ->capture_default_str();
  app.add_option("--clustering", clustering, "where zeros go: uniform, channels, spatial, mixed")
      ->capture_default_str();
  app.add_option("--dtype", dtype, "float32, float16, bfloat16, int8, uint8")->capture_default_str();
  app.add_option("--seed", seed, "generator seed")->capture_default_str();
  app.add_option("--layers", layers, "layers per iteration")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--iterations", iterations, "iterations (ignored with --bytes)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--dead-share", dead_share, "channels/mixed: share of zeros from dead channels (0..1)")
      ->check(finite_between(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--mean-run", mean_run, "spatial/mixed: mean zero run along W (elements, >= 1)")
      ->check(finite_between(1.0, 1e15))
      ->capture_default_str();
  app.add_option("--deflate", deflate, "HDF5 deflate level of the datasets (0 = contiguous)")
      ->check(CLI::Range(0, 9))
      ->capture_default_str();
  app.add_flag("-f,--force,--overwrite", overwrite, "replace the output file if it exists (--overwrite: old name)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  formats::SynthSpec base;
  std::vector<double> densities;
  formats::TensorMeta meta;
  std::int64_t tensor_bytes = 0;
  try {
    if (out.empty()) throw formats::Error("-o needs a file name");
    base.dims = parse_list<std::int64_t>(
        shape, [](const std::string& x, std::size_t* u) { return std::stoll(x, u); }, "--shape");
    if (base.dims.size() != 4 && base.dims.size() != 2)
      throw formats::Error("--shape '" + shape + "': expected 4 (N,C,H,W) or 2 (N,F) dimensions");
    densities = parse_list<double>(
        density, [](const std::string& x, std::size_t* u) { return std::stod(x, u); }, "--density");
    if (densities.size() != 1 && densities.size() != static_cast<std::size_t>(layers))
      throw formats::Error(
          fmt::format("--density: {} values given; expected 1 or one per layer ({})", densities.size(), layers));
    for (double d : densities)
      if (!(d >= 0.0 && d <= 1.0)) throw formats::Error(fmt::format("--density {} is outside 0..1", d));
    auto c = formats::parse_clustering(clustering);
    if (!c) throw formats::Error("--clustering '" + clustering + "': expected uniform, channels, spatial or mixed");
    auto t = formats::parse_dtype(dtype);
    if (!t) throw formats::Error("--dtype '" + dtype + "': expected float32, float16, bfloat16, int8 or uint8");
    base.clustering = *c;
    base.dtype = *t;
    base.dead_share = dead_share;
    base.mean_zero_run = mean_run;
    for (double d : densities) {  // every value the generator will see, checked before any work
      formats::SynthSpec each = base;
      each.density = d;
      formats::validate(each);
    }
    meta.layout = base.dims.size() == 4 ? formats::Layout::NCHW : formats::Layout::NC;
    meta.dtype = *t;
    meta.dims = base.dims;
    meta.op = "conv";
    meta.role = "x";
    meta.phase = "forward";
    meta.offload = true;  // every synthetic tensor stands for an offloaded post-ReLU activation
    tensor_bytes = meta.bytes();
    if (tensor_bytes < 0) throw formats::Error("--shape '" + shape + "' holds more than 2^63 - 1 bytes");
    if (tensor_bytes == 0) throw formats::Error("--shape '" + shape + "' holds no elements");
    if (!bytes.empty()) {
      const std::uint64_t want = parse_byte_size(bytes, "--bytes");
      if (want == 0) throw formats::Error("--bytes '" + bytes + "' must be positive");
      const auto per_iter = static_cast<std::uint64_t>(tensor_bytes) * static_cast<std::uint64_t>(layers);
      iterations = static_cast<std::int64_t>((want + per_iter - 1) / per_iter);
    }
    std::int64_t total_bytes = 0;
    if (__builtin_mul_overflow(iterations, static_cast<std::int64_t>(layers), &total_bytes) ||
        __builtin_mul_overflow(total_bytes, tensor_bytes, &total_bytes) || total_bytes > (std::int64_t{1} << 62))
      throw formats::Error("--iterations x --layers x the tensor size exceeds 2^62 bytes");
  } catch (const formats::Error& e) {
    fmt::print(stderr, "cdma synth: {}\n", e.what());
    return kExitUsage;
  }

  std::string command = "cdma";
  for (int i = 0; i < argc; ++i) command += std::string(" ") + argv[i];
  std::filesystem::path final_path;  // the file written: -o's symlinks followed; a device or FIFO is refused
  try {
    final_path = formats::regular_output_path(out);
  } catch (const formats::UsageError& e) {
    fmt::print(stderr, "cdma synth: -o {}\n", e.what());
    return kExitUsage;
  } catch (const formats::Error& e) {
    fmt::print(stderr, "cdma synth: error: {}\n", e.what());
    return kExitFailure;
  }
  if (!overwrite && std::filesystem::exists(final_path)) {
    fmt::print(stderr, "cdma synth: {} exists (use --force to replace it)\n", out);
    return kExitUsage;
  }
  const std::filesystem::path tmp = formats::temporary_beside(final_path);
  auto old = std::signal(SIGINT, on_synth_sigint);
  const bool tty = isatty(STDERR_FILENO);
  try {
    formats::TraceAttrs attrs;
    attrs.producer = std::string("cdma-synth ") + cdma::kVersion;
    attrs.source = "synthetic";
    attrs.model = "synthetic";
    attrs.command = command;
    formats::WriterOptions wo;
    wo.overwrite = true;
    wo.deflate_level = deflate;
    wo.flush_every = 16;
    formats::TraceWriter w(tmp, attrs, wo);
    std::vector<std::byte> buf(static_cast<std::size_t>(tensor_bytes));
    const std::int64_t total = iterations * layers;
    for (std::int64_t it = 0; it < iterations && !g_synth_stop; ++it) {
      for (int l = 0; l < layers && !g_synth_stop; ++l) {
        formats::SynthSpec spec = base;
        spec.density = densities.size() == 1 ? densities[0] : densities[static_cast<std::size_t>(l)];
        const std::int64_t index = it * layers + l;
        spec.seed = seed * 1000003ULL + static_cast<std::uint64_t>(index);
        formats::synth_activations_into(spec, buf);
        meta.iteration = it;
        meta.layer = fmt::format("layer{}", l);
        meta.layer_index = l;
        w.append_tensor(meta, buf);
        if (tty) fmt::print(stderr, "\rcdma synth: {}/{} tensors", index + 1, total);
      }
    }
    if (tty) fmt::print(stderr, "\n");
    if (g_synth_stop) {
      w.close();
      std::filesystem::remove(tmp);
      std::signal(SIGINT, old);
      fmt::print(stderr, "cdma synth: interrupted; {} not written\n", out);
      return kExitInterrupted;
    }
    w.close();
    formats::commit_output(tmp, final_path);
  } catch (const std::exception& e) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    std::signal(SIGINT, old);
    fmt::print(stderr, "cdma synth: error: {}\n", e.what());
    return kExitFailure;
  }
  std::signal(SIGINT, old);
  fmt::print(stderr, "cdma synth: wrote {} ({} iterations x {} layers, {:.3f} GB)\n", out, iterations, layers,
             static_cast<double>(iterations * layers * tensor_bytes) * 1e-9);
  return kExitOk;
}

}  // namespace
CDMA_REGISTER_VERB("synth", "write a synthetic trace (deterministic activations) for tests and benchmarks", run_synth);
}  // namespace cdma::cli
