// `cdma bench TRACE...`: encode and decode speed of each codec on the traces' own tensors against
// memcpy of the same bytes in the same run (analyze::measure_codec_speed), like lzbench.
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/analyze/speed.hpp>
#include <cdma/formats/byte_size.hpp>
#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/version.hpp>

#include <fmt/core.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include <unistd.h>
#include <sstream>

namespace cdma::cli {
namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) out.push_back(x);
  return out;
}

// The last-level cache of cpu0 (the largest size under /sys/devices/system/cpu/cpu0/cache), 0 when
// unknown.
std::uint64_t last_level_cache_bytes() {
  std::uint64_t best = 0;
  for (int i = 0; i < 16; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string text;
    if (!(f >> text)) continue;
    const auto v = formats::parse_byte_size(text);  // "32768K"
    if (v && *v > best) best = *v;
  }
  return best;
}

// The largest tensor the bench timed (per layer, bytes / tensors: a layer's tensors share a shape).
std::uint64_t largest_tensor_bytes(const analyze::SpeedReport& r) {
  std::uint64_t m = 0;
  for (const auto& row : r.layers)
    if (row.tensors) m = std::max(m, row.bytes / row.tensors);
  return m;
}

// Each operation reads one tensor and writes its copy or encoding (up to about its size again):
// when twice the largest tensor fits in the last-level cache, every timing is of cached data.
bool in_cache(const analyze::SpeedReport& r, std::uint64_t llc) {
  return llc > 0 && 2 * largest_tensor_bytes(r) <= llc;
}

// The table rows as JSON objects (empty cells null): schema cdma-bench v1.
nlohmann::ordered_json bench_json(const analyze::SpeedReport& r, const formats::Table& t) {
  nlohmann::ordered_json j;
  j["schema"] = "cdma-bench";
  j["schema_version"] = 1;
  j["producer"] = std::string("cdma-bench ") + cdma::kVersion;
  j["cpu"] = r.cpu;
  j["simd"] = r.simd;
  j["codecs"] = r.codecs;
  j["traces"] = r.paths;
  const auto llc = last_level_cache_bytes();
  j["largest_tensor_bytes"] = largest_tensor_bytes(r);
  j["last_level_cache_bytes"] = llc ? nlohmann::ordered_json(llc) : nlohmann::ordered_json(nullptr);
  j["in_cache"] = in_cache(r, llc);
  auto rows = nlohmann::ordered_json::array();
  for (const auto& row : t.rows) {
    nlohmann::ordered_json o;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const auto& name = t.columns[c].name;
      if (name == "cpu" || name == "simd") continue;
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, std::monostate>)
              o[name] = nullptr;
            else
              o[name] = v;
          },
          row[c]);
    }
    rows.push_back(std::move(o));
  }
  j["rows"] = std::move(rows);
  return j;
}

void print_table(const analyze::SpeedReport& r, bool per_layer) {
  fmt::print("CPU {} (SIMD path {}); best of each round, the traces' own tensors, one thread\n", r.cpu, r.simd);
  for (std::size_t ti = 0; ti < r.totals.size(); ++ti) {
    const auto& tot = r.totals[ti];
    fmt::print("\n{}: {} tensors, {}, memcpy {:.2f} GB/s\n", r.paths[ti], tot.tensors,
               human_bytes(static_cast<double>(tot.bytes)),
               tot.memcpy_s > 0 ? static_cast<double>(tot.bytes) / tot.memcpy_s / 1e9 : 0.0);
    auto line = [&](const analyze::SpeedRow& row, std::size_t c, const std::string& label) {
      const double enc = row.encode_s[c] > 0 ? row.memcpy_s / row.encode_s[c] : 0;
      const double dec = row.decode_s[c] > 0 ? row.memcpy_s / row.decode_s[c] : 0;
      const double b = static_cast<double>(row.bytes);
      fmt::print("{:<18} {:<8} {:>7.2f}x {:>9.3f} {:>8.2f}x {:>9.3f} {:>8.2f}x\n", label, r.codecs[c],
                 row.compressed[c] ? b / static_cast<double>(row.compressed[c]) : 0.0,
                 row.encode_s[c] > 0 ? b / row.encode_s[c] / 1e9 : 0.0, enc,
                 row.decode_s[c] > 0 ? b / row.decode_s[c] / 1e9 : 0.0, dec);
    };
    fmt::print("{:<18} {:<8} {:>8} {:>9} {:>9} {:>9} {:>9}\n", "layer", "codec", "ratio", "enc GB/s", "enc/mcpy",
               "dec GB/s", "dec/mcpy");
    if (per_layer)
      for (const auto& row : r.layers)
        if (row.trace == static_cast<int>(ti))
          for (std::size_t c = 0; c < r.codecs.size(); ++c) line(row, c, row.layer);
    for (std::size_t c = 0; c < r.codecs.size(); ++c) line(tot, c, "(all)");
  }
  fmt::print(
      "\nenc/mcpy, dec/mcpy: codec speed over memcpy speed of the same bytes, measured side by side "
      "(> 1: faster than copying).\n");
  const auto llc = last_level_cache_bytes();
  if (in_cache(r, llc))
    fmt::print(
        "in-cache speeds: the largest tensor is {} and the last-level cache {}, so every copy and codec ran on "
        "cached data; a DMA engine streams from DRAM (bench/run_codecs.sh measures 64 MiB buffers).\n",
        human_bytes(static_cast<double>(largest_tensor_bytes(r))), human_bytes(static_cast<double>(llc)));
}

int run(int argc, char** argv) {
  CLI::App app{
      "Encode and decode speed of each codec on the traces' own tensors (the offload set by default), against "
      "memcpy of the same bytes measured in the same run; per layer and in total, like lzbench.",
      "cdma bench"};
  std::vector<std::string> paths;
  std::string codecs = fmt::format("{}", fmt::join(formats::default_codecs(), ",")), layers, ops, csv, json_out;
  analyze::SpeedOptions o;
  bool all_tensors = false, per_layer = false, quiet = false, no_verify = false;
  app.add_option("traces", paths, "trace files (HDF5, trace format v1)")->required();
  app.add_option("-c,--codecs", codecs, "comma-separated codecs: " + formats::codec_help())->capture_default_str();
  app.add_flag("--all-tensors", all_tensors, "every recorded tensor, not only the offload set");
  app.add_option("--layers", layers, "only these layers (comma-separated names)");
  app.add_option("--ops", ops, "only these ops (comma-separated)");
  app.add_option("--rounds", o.rounds, "each timing is the best of N rounds")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--min-ms", o.min_ms, "a round repeats an operation for at least this many milliseconds")
      ->capture_default_str()
      ->check(finite_between(0.0, 10000.0));
  app.add_flag("--by-layer", per_layer, "print a row per layer and codec (CSV and JSON always have them)");
  app.add_flag("--no-verify", no_verify, "do not compare each decode with the original bytes");
  app.add_option("--csv", csv, "write the rows as CSV ('-' = stdout)");
  app.add_option("--json", json_out, "write the rows as JSON (schema cdma-bench v1; '-' = stdout)");
  app.add_flag("-q,--quiet", quiet, "no table on stdout");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (const auto word = codec_word_among_traces(paths)) {
    fmt::print(stderr, "cdma bench: error: {}\n", *word);
    return kExitUsage;
  }
  if (const auto missing = missing_input(paths)) {
    fmt::print(stderr, "cdma bench: error: {}\n", *missing);
    return kExitFailure;
  }
  try {
    std::vector<OutputArg> outputs;
    if (!csv.empty()) outputs.push_back({"--csv", csv});
    if (!json_out.empty()) outputs.push_back({"--json", json_out});
    check_outputs(paths, outputs);
    o.codecs = split(codecs);
    if (o.codecs.empty()) throw formats::UsageError("--codecs '" + codecs + "': no codec named");
    for (const auto& c : o.codecs) {  // a wrong codec name is a command-line error, found before any work
      try {
        (void)formats::make_codec(c);
      } catch (const formats::Error& e) {
        throw formats::UsageError(e.what());
      }
    }
    o.filters.offloaded_only = !all_tensors;
    if (!layers.empty()) o.filters.layers = split(layers);
    if (!ops.empty()) o.filters.ops = split(ops);
    o.verify = !no_verify;
    const bool tty = isatty(STDERR_FILENO);
    const auto rep = analyze::measure_codec_speed(std::vector<std::filesystem::path>(paths.begin(), paths.end()), o,
                                                  [&](std::uint64_t done, std::uint64_t n) {
                                                    if (tty) fmt::print(stderr, "\rcdma bench: {}/{} tensors", done, n);
                                                  });
    if (tty) fmt::print(stderr, "\n");
    std::uint64_t measured = 0;
    for (const auto& t : rep.totals) measured += t.tensors;
    if (measured == 0) throw formats::UsageError("no tensor passes the filters: nothing was measured");
    const formats::Table t = analyze::speed_table(rep);
    if (!csv.empty()) write_output(csv, [&](std::ostream& os) { formats::write_csv(os, t); });
    if (!json_out.empty()) write_output(json_out, bench_json(rep, t).dump(1) + "\n");
    if (!quiet && csv != "-" && json_out != "-") print_table(rep, per_layer);
    finish_stdout();
    return kExitOk;
  } catch (const formats::UsageError& e) {
    fmt::print(stderr, "cdma bench: {}\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cdma bench: {}\n", e.what());
    return kExitFailure;
  }
}

}  // namespace

CDMA_REGISTER_VERB("bench", "codec encode/decode speed on a trace's own tensors, against memcpy", run);

}  // namespace cdma::cli
