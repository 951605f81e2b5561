// The analysis rows the report draws, from the analyzer in memory or from its JSON document.
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/error.hpp>
#include <cdma/report/html.hpp>

#include <fmt/core.h>

#include <optional>

namespace cdma::report {

using nlohmann::json;

namespace {
int width_of(const std::string& dtype) {
  if (dtype == "float16" || dtype == "bfloat16") return 2;
  if (dtype == "int8" || dtype == "uint8") return 1;
  return 4;
}
}  // namespace

AnalysisTables analysis_tables(const analyze::Analysis& a) {
  AnalysisTables t;
  t.codecs = a.codec_names;
  t.layouts = a.options.layouts;
  t.dtypes = a.options.dtypes;
  for (const auto& tr : a.traces) t.traces.push_back({tr.index, tr.path, tr.model.value_or(""), tr.source});
  const auto stored = a.stored_variant();
  auto take = [&](analyze::Level level, std::vector<AnalysisRow>& out, bool every_variant) {
    if (!every_variant && !stored) return;
    for (const auto& g : every_variant ? a.rows(level) : a.rows(level, stored)) {
      AnalysisRow r;
      r.trace = g.trace;
      r.layer = g.layer.value_or("");
      r.op = g.op.value_or("");
      r.layer_index = g.layer_index.value_or(-1);
      r.iteration = g.iteration.value_or(-1);
      r.layout = a.variants[g.variant].layout;
      r.dtype = a.variants[g.variant].dtype;
      r.tensors = g.m.tensors;
      r.bytes = g.m.bytes;
      r.density = g.m.density();
      for (const auto& c : g.m.codecs) r.ratio.push_back(c.ratio ? *c.ratio : std::nan(""));
      out.push_back(std::move(r));
    }
  };
  take(analyze::Level::network, t.network, true);
  take(analyze::Level::layer, t.layer, false);
  take(analyze::Level::iteration, t.iteration, false);
  take(analyze::Level::layer_iteration, t.layer_iteration, false);
  if (stored)
    for (const auto& tr : a.tensors) {
      const auto& vm = tr.variants[*stored];
      if (!vm.present) continue;
      TensorPoint p;
      p.trace = tr.info.trace;
      p.density = vm.elements ? static_cast<double>(vm.nonzeros) / static_cast<double>(vm.elements) : std::nan("");
      p.width = width_of(vm.actual_dtype);
      for (const auto& c : vm.codecs)
        p.ratio.push_back(c.bytes && *c.bytes > 0 ? static_cast<double>(vm.bytes) / static_cast<double>(*c.bytes)
                                                  : std::nan(""));
      t.tensors.push_back(std::move(p));
    }
  return t;
}

namespace {

double num(const json& j) { return j.is_number() ? j.get<double>() : std::nan(""); }

// A count of a row (bytes, tensors): a JSON integer 0 .. 2^62, 0 when absent. A float (1e300), a
// negative or a larger number is refused, naming the row and the field: a cast printed 1e300 bytes
// as -9223372036854775808.
std::uint64_t count_of(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) return 0;
  const json& v = j[key];
  constexpr std::int64_t kMax = std::int64_t{1} << 62;
  if (v.is_number_unsigned() && v.get<std::uint64_t>() <= static_cast<std::uint64_t>(kMax))
    return v.get<std::uint64_t>();
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() >= 0 && v.get<std::int64_t>() <= kMax)
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  throw formats::Error(fmt::format("report: the analysis document's {}.{}: expected an integer 0 .. 2^62, got {}",
                                   where, key, v.dump()));
}

AnalysisRow row_of(const json& j, const std::vector<std::string>& codecs, const std::string& where) {
  AnalysisRow r;
  r.trace = j.value("trace", 0);
  r.layer = j.value("layer", "");
  r.op = j.value("op", "");
  r.layer_index = j.value("layer_index", -1);
  r.iteration = j.value("iteration", std::int64_t{-1});
  r.layout = j.value("layout", "stored");
  r.dtype = j.value("dtype", "stored");
  r.tensors = count_of(j, "tensors", where);
  r.bytes = count_of(j, "bytes", where);
  r.density = j.contains("density") ? num(j["density"]) : std::nan("");
  for (const auto& c : codecs) {
    const bool known = j.contains("codecs") && j["codecs"].contains(c) && j["codecs"][c].contains("ratio");
    r.ratio.push_back(known ? num(j["codecs"][c]["ratio"]) : std::nan(""));
  }
  return r;
}

bool stored(const AnalysisRow& r) { return r.layout == "stored" && r.dtype == "stored"; }

}  // namespace

AnalysisTables analysis_tables(const json& a) {
  if (!a.is_object() || a.value("schema", "") != "cdma-analysis" || !a.contains("schema_version") ||
      !a["schema_version"].is_number_integer() || a["schema_version"].get<int>() != 1)
    throw formats::Error("report: the analysis document is not schema cdma-analysis v1");
  try {
    AnalysisTables t;
    t.codecs = a.at("options").at("codecs").get<std::vector<std::string>>();
    t.layouts = a["options"].value("layouts", std::vector<std::string>{"stored"});
    t.dtypes = a["options"].value("dtypes", std::vector<std::string>{"stored"});
    for (const auto& tr : a.value("traces", json::array()))
      t.traces.push_back({tr.value("index", 0), tr.value("path", ""),
                          tr.contains("model") && tr["model"].is_string() ? tr["model"].get<std::string>() : "",
                          tr.value("source", "")});
    auto take = [&](const char* level, std::vector<AnalysisRow>& out, bool every_variant) {
      std::size_t i = 0;
      for (const auto& j : a.value(level, json::array())) {
        AnalysisRow r = row_of(j, t.codecs, fmt::format("{}[{}]", level, i++));
        if (every_variant || stored(r)) out.push_back(std::move(r));
      }
    };
    take("network", t.network, true);
    take("layer", t.layer, false);
    take("iteration", t.iteration, false);
    take("layer_iteration", t.layer_iteration, false);
    std::size_t i = 0;
    for (const auto& j : a.value("tensor", json::array())) {
      const std::string where = fmt::format("tensor[{}]", i++);
      if (j.value("layout", "") != "stored" || j.value("dtype", "") != "stored") continue;
      const AnalysisRow r = row_of(j, t.codecs, where);
      TensorPoint p;
      p.trace = r.trace;
      p.density = r.density;
      p.width =
          width_of(j.contains("actual_dtype") && j["actual_dtype"].is_string() ? j["actual_dtype"].get<std::string>()
                                                                               : j.value("stored_dtype", "float32"));
      p.ratio = r.ratio;
      t.tensors.push_back(std::move(p));
    }
    return t;
  } catch (const json::exception& e) {
    throw formats::Error(fmt::format("report: the analysis document has a field of the wrong type ({})", e.what()));
  }
}

}  // namespace cdma::report
