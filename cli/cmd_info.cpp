// `cdma info TRACE...`: what a trace holds, as a table or JSON.
#include "util.hpp"
#include "verbs.hpp"

#include <cdma/formats/trace.hpp>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <set>

namespace cdma::cli {
namespace {

using formats::TraceReader;
using nlohmann::json;

struct Count {
  std::int64_t tensors = 0, bytes = 0;
};

json describe(const TraceReader& r, bool list_tensors) {
  const auto& a = r.attrs();
  json j;
  j["path"] = formats::clean_text(r.path().string());  // a command-line path may hold any bytes
  j["format_version"] = a.format_version;
  j["producer"] = a.producer;
  j["source"] = a.source;
  j["created"] = a.created;
  j["complete"] = a.complete;
  for (auto [k, v] :
       {std::pair{"model", &a.model}, {"device", &a.device}, {"framework", &a.framework}, {"command", &a.command}})
    j[k] = *v ? json(**v) : json(nullptr);
  j["dropped_tensors"] = a.dropped_tensors ? json(*a.dropped_tensors) : json(nullptr);
  // Extension attributes producers write (cdma train, cdma capture, cdma.torch): shown when present.
  json ext = json::object();
  for (const char* k : {"status", "dataset", "batch_size", "capture_batch", "iterations", "iterations_run", "seed",
                        "test_accuracy", "test_images", "final_train_loss", "capture_mode"})
    if (auto v = r.root_attribute(k)) ext[k] = *v;
  j["extensions"] = ext;

  std::map<std::string, Count> by_dtype, by_op, by_role;
  std::set<std::int64_t> iterations;
  std::map<std::pair<std::int32_t, std::string>, std::pair<std::string, Count>> layers;
  Count total, offloaded;
  bool stated = false;  // the producer wrote `offload` attributes
  json tensors = json::array();
  // Byte sums of tensors whose sizes come from the file: checked, never wrapped.
  auto add = [&](std::int64_t& sum, std::int64_t b) {
    if (__builtin_add_overflow(sum, b, &sum))
      throw formats::TraceError(r.path().string(), "/tensors",
                                r.path().string() + ": /tensors: the tensors' byte counts sum to more than 2^63 - 1");
  };
  for (const auto& t : r.tensors()) {
    std::int64_t b = t.bytes();
    stated = stated || t.offload.has_value();
    if (t.offloaded()) {
      offloaded.tensors++;
      add(offloaded.bytes, b);
    }
    for (auto* m : {&by_dtype[std::string(formats::to_string(t.dtype))], &by_op[t.op], &by_role[t.role], &total}) {
      m->tensors++;
      add(m->bytes, b);
    }
    auto& l = layers[{t.layer_index, t.layer}];
    l.first = t.op;
    l.second.tensors++;
    add(l.second.bytes, b);
    iterations.insert(t.iteration);
    if (list_tensors)
      tensors.push_back({{"name", t.name},
                         {"iteration", t.iteration},
                         {"layer", t.layer},
                         {"layer_index", t.layer_index},
                         {"op", t.op},
                         {"role", t.role},
                         {"phase", t.phase},
                         {"layout", formats::to_string(t.layout)},
                         {"dtype", formats::to_string(t.dtype)},
                         {"dims", t.dims},
                         {"bytes", b},
                         {"offload", t.offloaded()}});
  }
  j["tensors"] = total.tensors;
  j["bytes"] = total.bytes;
  // What a memory-virtualizing framework offloads (docs/spec/TRACE_FORMAT.md `offload`; "default rule" when the
  // producer did not say, so forward-phase x counts).
  j["offloaded"] = {{"tensors", offloaded.tensors},
                    {"bytes", offloaded.bytes},
                    {"from", stated ? "offload attributes" : "default rule (forward-phase x)"}};
  j["iterations"] = std::vector<std::int64_t>(iterations.begin(), iterations.end());
  auto counts = [](const std::map<std::string, Count>& m) {
    json o = json::object();
    for (auto& [k, c] : m) o[k] = {{"tensors", c.tensors}, {"bytes", c.bytes}};
    return o;
  };
  j["by_dtype"] = counts(by_dtype);
  j["by_op"] = counts(by_op);
  j["by_role"] = counts(by_role);
  json lj = json::array();
  for (auto& [k, v] : layers)
    lj.push_back({{"layer_index", k.first},
                  {"layer", k.second},
                  {"op", v.first},
                  {"tensors", v.second.tensors},
                  {"bytes", v.second.bytes}});
  j["layers"] = lj;
  j["timeline_rows"] = r.has_timeline() ? json(r.timeline().size()) : json(0);
  j["stats_rows"] = r.has_stats() ? json(r.stats().size()) : json(0);
  j["warnings"] = r.warnings();
  if (list_tensors) j["tensor_list"] = tensors;
  return j;
}

void print_table(const json& j, bool list_tensors) {
  fmt::print("{}\n", j["path"].get<std::string>());
  auto row = [](const char* k, const std::string& v) { fmt::print("  {:<12} {}\n", k, v); };
  row("format", fmt::format("cdma-trace v{} ({})", j["format_version"].get<int>(),
                            j["complete"].get<bool>() ? "complete" : "INCOMPLETE: complete = 0"));
  row("producer", j["producer"]);
  row("source", j["source"]);
  row("created", j["created"]);
  for (auto k : {"model", "device", "framework", "command"})
    if (!j[k].is_null()) row(k, j[k]);
  auto its = j["iterations"].get<std::vector<std::int64_t>>();
  std::string it_s =
      its.empty() ? "none with tensors" : fmt::format("{} with tensors ({}..{})", its.size(), its.front(), its.back());
  row("tensors", fmt::format("{} ({})", j["tensors"].get<std::int64_t>(), human_bytes(j["bytes"].get<double>())));
  row("offloaded",
      fmt::format("{} ({}; {})", j["offloaded"]["tensors"].get<std::int64_t>(),
                  human_bytes(j["offloaded"]["bytes"].get<double>()), j["offloaded"]["from"].get<std::string>()));
  row("iterations", it_s);
  row("layers", std::to_string(j["layers"].size()));
  if (!j["dropped_tensors"].is_null()) row("dropped", std::to_string(j["dropped_tensors"].get<std::int64_t>()));
  // The producer's own `iterations` attribute (cdma.torch: optimizer steps; cdma train: iterations run) is not
  // the count of iterations the tensors carry (the row above): labelled apart.
  for (auto& [k, v] : j["extensions"].items())
    if (k == "iterations")
      row("iterations attribute", v.get<std::string>() + " (the producer's count: iterations run, or optimizer steps)");
    else
      row(k.c_str(), v.get<std::string>());
  for (auto [key, label] : {std::pair{"by_dtype", "by dtype"}, {"by_op", "by op"}, {"by_role", "by role"}}) {
    std::string s;
    for (auto& [k, v] : j[key].items())
      s += fmt::format("{}{}: {} ({})", s.empty() ? "" : ", ", k, v["tensors"].get<std::int64_t>(),
                       human_bytes(v["bytes"].get<double>()));
    if (!s.empty()) row(label, s);
  }
  row("timeline", fmt::format("{} rows", j["timeline_rows"].get<std::size_t>()));
  row("stats", fmt::format("{} rows", j["stats_rows"].get<std::size_t>()));
  if (!j["layers"].empty()) {
    fmt::print("\n  {:>5}  {:<24} {:<8} {:>8} {:>12}\n", "index", "layer", "op", "tensors", "bytes");
    for (auto& l : j["layers"])
      fmt::print("  {:>5}  {:<24} {:<8} {:>8} {:>12}\n", l["layer_index"].get<int>(), l["layer"].get<std::string>(),
                 l["op"].get<std::string>(), l["tensors"].get<std::int64_t>(), human_bytes(l["bytes"].get<double>()));
  }
  if (list_tensors) {
    fmt::print("\n  {:<10} {:>5} {:<20} {:<8} {:<4} {:<6} {:<8} {}\n", "name", "iter", "layer", "op", "role", "layout",
               "dtype", "dims");
    for (auto& t : j["tensor_list"])
      fmt::print("  {:<10} {:>5} {:<20} {:<8} {:<4} {:<6} {:<8} {}\n", t["name"].get<std::string>(),
                 t["iteration"].get<std::int64_t>(), t["layer"].get<std::string>(), t["op"].get<std::string>(),
                 t["role"].get<std::string>(), t["layout"].get<std::string>(), t["dtype"].get<std::string>(),
                 formats::dims_text(t["dims"].get<std::vector<std::int64_t>>()));
  }
  fmt::print("\n");
}

int run_info(int argc, char** argv) {
  CLI::App app{
      "Show what trace files hold: producer, completeness, iterations, layers, tensor counts and bytes "
      "by dtype/op/role, timeline and stats rows.",
      "cdma info"};
  std::vector<std::string> paths;
  bool as_json = false, list = false;
  app.add_option("traces", paths, "trace files (HDF5, trace format v1)")->required();
  app.add_flag("--json", as_json, "print JSON (an array, one object per trace) instead of tables");
  app.add_flag("--tensors", list, "also list every tensor");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  json all = json::array();
  int rc = kExitOk;
  for (const auto& p : paths) {
    try {
      TraceReader r(p);
      json j = describe(r, list);
      for (const auto& w : r.warnings()) fmt::print(stderr, "cdma info: warning: {}\n", w);
      if (as_json)
        all.push_back(j);
      else
        print_table(j, list);
    } catch (const formats::Error& e) {
      fmt::print(stderr, "cdma info: error: {}\n", e.what());
      rc = kExitFailure;
    }
  }
  // Every string in `all` is clean text (the reader escapes what a file holds); `replace` only
  // guards the dump itself against ever throwing.
  if (as_json) fmt::print("{}\n", all.dump(2, ' ', false, json::error_handler_t::replace));
  return rc;
}

}  // namespace
CDMA_REGISTER_VERB("info", "what a trace holds (producer, tensors, layers, timeline)", run_info);
}  // namespace cdma::cli
