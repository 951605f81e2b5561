// `cdma analyze TRACE...`: sparsity and compression ratios of trace tensors, as a table, CSV or JSON
// (docs/ANALYSIS_JSON.md). A thin layer over cdma::analyze.
#include "analyze_io.hpp"
#include "analyze_mpi.hpp"
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/analyze/output.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/codec.hpp>
#include <cdma/formats/error.hpp>

#include <fmt/core.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <cstdio>
#include <filesystem>

namespace cdma::cli {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

int run_analyze(int argc, char** argv) {
  CLI::App app{
      "Sparsity and compression ratios of the tensors of trace files: density and zero runs per tensor, "
      "and the sizes that ZVC, ZRLE-k, zlib, zstd and lz4 give, per tensor, layer, iteration, "
      "layer x iteration and network (ratios byte-weighted). Prints a table; --csv and --json write "
      "machine-readable output (schema: docs/ANALYSIS_JSON.md).",
      "cdma analyze"};
  std::vector<std::string> paths;
  std::string codecs = fmt::format("{}", fmt::join(formats::default_codecs(), ",")), chunk = "0", layouts = "stored",
              dtypes = "stored";
  std::string iterations, layers, ops, roles, by = "layer", csv_path, json_path;
  bool long_csv = false, verify = false, keep_going = false, quiet = false, timing = false, no_mmap = false,
       all_tensors = false;
  unsigned threads = 0;
  std::string progress = "auto", mpi = "auto", read = "mmap";
  app.add_option("traces", paths, "trace files (HDF5, trace format v1)")->required();
  app.add_option("-c,--codecs", codecs, "comma-separated codecs: " + formats::codec_help())->capture_default_str();
  app.add_option("--chunk", chunk,
                 "compress in independent chunks of this size (e.g. 4K; 0 = whole tensors, else >= 4 bytes; byte "
                 "codecs never take more than 64 MiB at once)")
      ->capture_default_str();
  app.add_option("--layouts", layouts, "comma-separated layouts to analyse: stored, NCHW, NHWC, CHWN")
      ->capture_default_str();
  app.add_option(
         "--dtypes", dtypes,
         "comma-separated dtypes to analyse: stored, float16, bfloat16, fp8-e4m3, fp8-e5m2 (RNE, fp8 saturating)")
      ->capture_default_str();
  app.add_flag("--all-tensors", all_tensors,
               "every recorded tensor (default: only the offload set, what a memory-virtualizing framework "
               "offloads: offload = 1, or forward-phase x where a producer did not say)");
  app.add_option("--iterations", iterations, "only these iterations, e.g. 0-3,7,10-");
  app.add_option("--layers", layers, "only these layers (comma-separated names)");
  app.add_option("--ops", ops, "only these ops (e.g. conv,relu)");
  app.add_option("--roles", roles, "only these roles (x, y, dy, dx)");
  app.add_option("--by", by, "table/CSV level: tensor, layer, iteration, layer-iteration, network")
      ->capture_default_str();
  auto* csv_opt =
      app.add_option("--csv", csv_path,
                     "write the --by level as CSV to FILE ('-' = stdout): one row per group and variant, a column "
                     "triple per codec");
  app.add_flag("--long", long_csv,
               "with --csv: the tidy table instead, one row per group x variant x codec (codec, compressed_bytes, "
               "ratio, mean_ratio, exact columns), as the Python API's cdma.analyze() returns it")
      ->needs(csv_opt);
  app.add_option("--json", json_path, "write every level as JSON (schema cdma-analysis v1) to FILE ('-' = stdout)");
  app.add_flag("--verify", verify, "decode every encoding and compare with the original bytes (mismatch = error)");
  app.add_flag("-k,--keep-going", keep_going, "skip unreadable files and tensors, list them, exit 1 at the end");
  app.add_option("-j,--jobs,--threads", threads,
                 "worker threads, 1.." + std::to_string(analyze::kMaxThreads) + " (default 0: one per core)")
      ->check(CLI::Range(0u, analyze::kMaxThreads));
  app.add_flag("-q,--quiet", quiet, "no table on stdout");
  app.add_option("--read", read,
                 "how workers get contiguous tensors: mmap (map the file, analyse in place), pread (read into "
                 "small reused buffers), hdf5 (every tensor through HDF5 in the reader thread); same results")
      ->check(CLI::IsMember({"mmap", "pread", "hdf5"}))
      ->capture_default_str();
  app.add_flag("--no-mmap", no_mmap, "the same as --read hdf5");
  app.add_flag("--timing", timing, "print throughput and where the time went to stderr");
  app.add_option("--progress", progress, "progress bar on stderr: auto (when a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  app.add_option("--mpi", mpi,
                 "split the work over the ranks of an MPI job (docs/MPI.md): auto (when started by mpirun, "
                 "mpiexec or srun), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  analyze::Options opts;
  std::optional<analyze::Level> level;
  try {
    std::vector<OutputArg> outputs;
    if (app.count("--json")) outputs.push_back({"--json", json_path});
    if (app.count("--csv")) outputs.push_back({"--csv", csv_path});
    check_outputs(paths, outputs);
    if (const auto word = codec_word_among_traces(paths)) throw formats::UsageError(*word);
    opts.codecs = split_list(codecs);
    opts.chunk_bytes = static_cast<std::size_t>(parse_byte_size(chunk, "--chunk"));
    opts.layouts = split_list(layouts);
    opts.dtypes = split_list(dtypes);
    if (!iterations.empty()) opts.filters.iterations = analyze::parse_iteration_ranges(iterations);
    if (!layers.empty()) opts.filters.layers = split_list(layers);
    if (!ops.empty()) opts.filters.ops = split_list(ops);
    if (!roles.empty()) opts.filters.roles = split_list(roles);
    opts.filters.offloaded_only = !all_tensors;
    opts.verify = verify;
    opts.keep_going = keep_going;
    opts.threads = threads;
    if (no_mmap && app.count("--read") && read != "hdf5")
      throw formats::UsageError("--no-mmap contradicts --read " + read);
    opts.read = no_mmap ? analyze::ReadMode::hdf5 : *analyze::parse_read_mode(read);  // checked by CLI11
    opts.validate();
    level = analyze::parse_level(by);
    if (!level)
      throw formats::Error("unknown --by level '" + by +
                           "' (expected tensor, layer, iteration, "
                           "layer-iteration or network)");
  } catch (const formats::Error& e) {
    fmt::print(stderr, "cdma analyze: {}\n", e.what());
    return kExitUsage;
  }

  AnalyzeOutputs out;
  out.json_path = json_path;
  out.csv_path = csv_path;
  out.long_csv = long_csv;
  out.quiet = quiet;
  out.timing = timing;
  out.level = *level;
  out.show_progress = progress == "always" || (progress == "auto" && isatty(STDERR_FILENO));
  if (mpi == "always" || (mpi == "auto" && mpi_launched())) return run_analyze_mpi(paths, opts, out);

  analyze::RunHooks hooks;
  hooks.stop = &analyze_stop_flag();
  if (out.show_progress) hooks.on_progress = [](const analyze::Progress& p) { draw_progress(p, false); };
  analyze::Analysis result;
  try {
    const StopOnSigint sigint;
    result = analyze::run_analysis({paths.begin(), paths.end()}, opts, hooks);
  } catch (const formats::Error& e) {
    if (out.show_progress) fmt::print(stderr, "\n");
    fmt::print(stderr, "cdma analyze: error: {}\n", e.what());
    return kExitFailure;
  }
  if (out.show_progress) draw_progress({}, true);
  if (result.interrupted) {
    fmt::print(stderr, "cdma analyze: interrupted; no output written\n");
    return kExitInterrupted;
  }
  if (timing) print_timing(result.stats);
  return write_results(result, out);
}

}  // namespace
CDMA_REGISTER_VERB("analyze", "sparsity and compression ratios (ZVC, ZRLE, zlib, zstd, lz4) of trace tensors",
                   run_analyze);
}  // namespace cdma::cli
