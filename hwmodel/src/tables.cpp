// The cdma-replay document as tidy tables (study.hpp, replay_tables): a flattening of the JSON
// that study_json writes, so that the CSV and the DataFrames hold the JSON's numbers.
#include <cdma/hwmodel/presets.hpp>
#include <cdma/hwmodel/study.hpp>

#include <string>
#include <vector>

namespace cdma::hwmodel {

namespace {

using nlohmann::json;
using K = formats::Table::Kind;
using Cell = formats::Table::Cell;

// A JSON value as a cell of a column of kind k: null (or absent) -> empty. A value of another
// type is a broken document: ModelError naming the key.
Cell cell(const json& obj, const char* key, K k) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Cell();
  const json& v = *it;
  switch (k) {
    case K::integer:
      if (v.is_number_integer()) return Cell(v.get<std::int64_t>());
      break;
    case K::real:
      if (v.is_number()) return Cell(v.get<double>());
      break;
    case K::text:
      if (v.is_string()) return Cell(v.get<std::string>());
      break;
    case K::boolean:
      if (v.is_boolean()) return Cell(v.get<bool>());
      break;
  }
  throw ModelError(std::string("replay document: '") + key + "' has an unexpected type");
}

const json& array_at(const json& obj, const char* key) {
  static const json empty = json::array();
  const auto it = obj.find(key);
  if (it == obj.end()) return empty;
  if (!it->is_array()) throw ModelError(std::string("replay document: '") + key + "' is not an array");
  return *it;
}

// Configuration labels of a run in the document's (oracle, vDNN, engines) order.
std::vector<std::string> config_labels(const json& run) {
  std::vector<std::string> labels;
  for (const auto& t : array_at(run, "totals")) labels.push_back(t.at("config").get<std::string>());
  return labels;
}

}  // namespace

ReplayTables replay_tables(const json& doc) {
  if (!doc.is_object() || doc.value("schema", "") != "cdma-replay")
    throw ModelError("replay_tables: not a cdma-replay document");
  ReplayTables t;
  t.totals = formats::Table({{"network", K::text},
                             {"source", K::text},
                             {"batch", K::integer},
                             {"gpu", K::text},
                             {"link", K::text},
                             {"link_effective_gbps", K::real},
                             {"precision", K::text},
                             {"compute", K::text},
                             {"policy", K::text},
                             {"config", K::text},
                             {"time_s", K::real},
                             {"forward_s", K::real},
                             {"backward_s", K::real},
                             {"stall_s", K::real},
                             {"offloaded_bytes", K::integer},
                             {"link_bytes", K::integer},
                             {"overhead_vs_oracle", K::real},
                             {"speedup_vs_vdnn", K::real},
                             {"unmeasured_layers", K::integer},
                             {"unmeasured_bytes", K::integer}});
  t.layers = formats::Table({{"network", K::text},
                             {"config", K::text},
                             {"index", K::integer},
                             {"layer", K::text},
                             {"op", K::text},
                             {"compute_fwd_s", K::real},
                             {"compute_bwd_s", K::real},
                             {"x_bytes", K::integer},
                             {"x_tensor", K::integer},
                             {"flops", K::real},
                             {"fwd_s", K::real},
                             {"bwd_s", K::real},
                             {"fwd_stall_s", K::real},
                             {"bwd_stall_s", K::real},
                             {"offload_s", K::real},
                             {"prefetch_s", K::real},
                             {"demand_fetch_s", K::real},
                             {"prefetch_layer", K::integer},
                             {"offload_bytes", K::integer},
                             {"link_bytes", K::integer},
                             {"ratio", K::real}});
  t.summary = formats::Table({{"network", K::text},
                              {"oracle_s", K::real},
                              {"vdnn_s", K::real},
                              {"vdnn_overhead", K::real},
                              {"engine", K::text},
                              {"speedup_vs_vdnn", K::real}});
  t.sweep = formats::Table({{"network", K::text},
                            {"parameter", K::text},
                            {"value", K::real},
                            {"config", K::text},
                            {"time_s", K::real},
                            {"speedup_vs_vdnn", K::real}});
  std::vector<std::vector<std::string>> labels;
  for (const auto& run : array_at(doc, "runs")) {
    labels.push_back(config_labels(run));
    const Cell net = cell(run, "network", K::text);
    const json link = run.value("link", json::object());
    const json unmeasured = run.value("unmeasured", json::object());
    const Cell nlayers = unmeasured.contains("layers") && unmeasured["layers"].is_array()
                             ? Cell(static_cast<std::int64_t>(unmeasured["layers"].size()))
                             : Cell();
    for (const auto& tot : array_at(run, "totals"))
      t.totals.add_row({net,
                        cell(run, "source", K::text),
                        cell(run, "batch", K::integer),
                        cell(run, "gpu", K::text),
                        cell(link, "name", K::text),
                        cell(link, "effective_gbps", K::real),
                        cell(run, "precision", K::text),
                        cell(run, "compute", K::text),
                        cell(run, "policy", K::text),
                        cell(tot, "config", K::text),
                        cell(tot, "time_s", K::real),
                        cell(tot, "forward_s", K::real),
                        cell(tot, "backward_s", K::real),
                        cell(tot, "stall_s", K::real),
                        cell(tot, "offloaded_bytes", K::integer),
                        cell(tot, "link_bytes", K::integer),
                        cell(tot, "overhead_vs_oracle", K::real),
                        cell(tot, "speedup_vs_vdnn", K::real),
                        nlayers,
                        cell(unmeasured, "bytes_per_iteration", K::integer)});
    for (const auto& layer : array_at(run, "layers")) {
      const json configs = layer.value("configs", json::object());
      for (const auto& label : labels.back()) {
        const auto c = configs.find(label);
        if (c == configs.end()) continue;  // the oracle offloads nothing: no per-layer entry
        t.layers.add_row({net,
                          Cell(label),
                          cell(layer, "index", K::integer),
                          cell(layer, "name", K::text),
                          cell(layer, "op", K::text),
                          cell(layer, "fwd_s", K::real),
                          cell(layer, "bwd_s", K::real),
                          cell(layer, "x_bytes", K::integer),
                          cell(layer, "x_tensor", K::integer),
                          cell(layer, "flops", K::real),
                          cell(*c, "fwd_s", K::real),
                          cell(*c, "bwd_s", K::real),
                          cell(*c, "fwd_stall_s", K::real),
                          cell(*c, "bwd_stall_s", K::real),
                          cell(*c, "offload_s", K::real),
                          cell(*c, "prefetch_s", K::real),
                          cell(*c, "demand_fetch_s", K::real),
                          cell(*c, "prefetch_layer", K::integer),
                          cell(*c, "offload_bytes", K::integer),
                          cell(*c, "link_bytes", K::integer),
                          cell(*c, "ratio", K::real)});
      }
    }
  }
  const json& summary = array_at(doc, "summary");
  for (std::size_t i = 0; i < summary.size(); ++i) {
    const json& row = summary[i];
    const Cell net = cell(row, "network", K::text);
    for (const auto& label : i < labels.size() ? labels[i] : std::vector<std::string>{}) {
      if (!row.contains(label)) continue;  // oracle and vDNN are not engines
      t.summary.add_row({net, cell(row, "oracle_s", K::real), cell(row, "vdnn_s", K::real),
                         cell(row, "vdnn_overhead", K::real), Cell(label), cell(row, label.c_str(), K::real)});
    }
  }
  for (const auto& sw : array_at(doc, "sweeps")) {
    const Cell net = cell(sw, "network", K::text), param = cell(sw, "parameter", K::text);
    for (const auto& row : array_at(sw, "rows")) {
      const Cell value = cell(row, "value", K::real);
      t.sweep.add_row({net, param, value, Cell(std::string("oracle")), cell(row, "oracle_s", K::real), Cell()});
      t.sweep.add_row({net, param, value, Cell(std::string("vDNN")), cell(row, "vdnn_s", K::real), Cell()});
      const json engines = row.value("engines", json::object());
      for (auto it = engines.begin(); it != engines.end(); ++it)
        t.sweep.add_row(
            {net, param, value, Cell(it.key()), cell(*it, "time_s", K::real), cell(*it, "speedup_vs_vdnn", K::real)});
    }
  }
  return t;
}

}  // namespace cdma::hwmodel
